import Testing
@Test func placeholderMemcacheProtocolTests() { #expect(1 + 1 == 2) }
