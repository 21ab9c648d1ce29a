/// Module `TinyGPT`; see docs/DESIGN.md.
enum TinyGPTNamespace {}
