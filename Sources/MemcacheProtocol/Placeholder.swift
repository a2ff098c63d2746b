// Filled by the protocol work.
