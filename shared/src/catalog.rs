//! Competitions, teams and matches: the read side (queries, cursor pagination, cache keys and TTLs).
