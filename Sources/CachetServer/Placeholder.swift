public enum CachetServerPlaceholder {}
