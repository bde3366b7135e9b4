-- Chunks and histograms arrive zstd-compressed: PostgreSQL need not try to compress them again
-- (pglz on every write of a tail chunk, and a decompression attempt on every read). EXTERNAL
-- keeps large values out of line, uncompressed. Applies to values written from now on.
ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE histograms ALTER COLUMN data SET STORAGE EXTERNAL;
