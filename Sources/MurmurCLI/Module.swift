/// Module `MurmurCLI`; see docs/DESIGN.md.
enum MurmurCLINamespace {}
