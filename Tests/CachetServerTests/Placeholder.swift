import Testing
@Test func placeholderCachetServerTests() { #expect(1 + 1 == 2) }
