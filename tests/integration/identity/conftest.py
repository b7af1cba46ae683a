"""The identity tests run the whole processor (admission, the identity step, the read
models) as the processor tests do."""

from tests.integration.processor.conftest import running  # noqa: F401  (the fixture)
