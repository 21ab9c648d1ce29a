/// Module `Checkpointing`; see docs/DESIGN.md.
enum CheckpointingNamespace {}
