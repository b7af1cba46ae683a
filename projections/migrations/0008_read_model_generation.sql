-- A read model's tables can be replaced by a rebuilt copy (`joinedup rebuild --switch`): its
-- generation goes up, and a worker that sees a new generation drops what it cached of it.
ALTER TABLE read_model ADD COLUMN generation int NOT NULL DEFAULT 1;
