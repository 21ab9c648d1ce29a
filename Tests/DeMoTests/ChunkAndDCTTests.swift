import Testing
@testable import DeMo
