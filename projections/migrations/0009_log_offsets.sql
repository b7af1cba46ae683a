-- A read model can also catch up from the Kafka log rather than the archive (a rebuild
-- from the log): `log_offset` is the next offset of the partition's log it reads there,
-- as `archive_seq` is the last archived event it applied. A read model catches up from one
-- of the two; the other stays 0.
ALTER TABLE read_model_position ADD COLUMN log_offset bigint NOT NULL DEFAULT 0;
