import Testing

@Suite struct TinyGPTPlaceholder {}
