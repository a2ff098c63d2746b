public let cachetVersion = "0.1.0"
public let memcachedCompatVersion = "1.6.45"
