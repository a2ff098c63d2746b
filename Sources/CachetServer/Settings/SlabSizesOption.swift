// `-o slab_sizes=<a>-<b>-…`: explicit slab class sizes instead of the `-f` progression. memcached 1.6.18
// reads the text after every other option (so `-n` and `slab_chunk_max` apply wherever they stand) and
// stops with exit 64 on the first bad size. Its tokenizer is strtok: runs of '-' separate, so "-100" and
// "100--200" are accepted, and each size is read with safe_strtoul (trailing blanks allowed).

enum SlabSizesOption {
    struct Refusal: Error { let message: String }

    /// The sizes as given (the store aligns each to 8 bytes and adds the slab_chunk_max class), or
    /// memcached's message. An empty value is refused without a message, as memcached does.
    static func parse(_ text: String, chunkSize: Int, slabChunkMax: Int) -> Result<[Int], Refusal> {
        if text.isEmpty { return .failure(Refusal(message: "")) }
        var sizes: [Int] = []
        var last: UInt32 = 0
        for token in text.split(separator: "-", omittingEmptySubsequences: true) {
            let parsed = CNumeric.safeStrtoul(String(token))
            let size = parsed ?? 0
            if parsed == nil || Int(size) < chunkSize || Int(size) > slabChunkMax {
                return .failure(Refusal(message: "slab size \(size) is out of valid range\n"))
            }
            if last >= size {
                return .failure(Refusal(message: "slab size \(size) cannot be lower than or equal to a previous class size\n"))
            }
            if UInt64(size) <= UInt64(last) + 8 {
                return .failure(Refusal(message: "slab size \(size) must be at least 8 bytes larger than previous class\n"))
            }
            sizes.append(Int(size))
            last = size
            // memcached keeps one id for the slab_chunk_max class: at most 62 sizes.
            if sizes.count >= 63 { return .failure(Refusal(message: "too many slab classes specified\n")) }
        }
        return .success(sizes)
    }
}
