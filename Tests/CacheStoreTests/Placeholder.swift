import Testing
@Test func placeholderCacheStoreTests() { #expect(1 + 1 == 2) }
