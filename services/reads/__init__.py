"""The read side: who may see what of a person (``domain/``), and, as the governance work
goes on, the read API, the access audit and subject access over it."""
