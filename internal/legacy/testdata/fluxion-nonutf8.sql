-- fluxion-nonutf8.db: the original server's schema (src/sqlitestorage.cpp) with names that
-- are not UTF-8, which no request can name. Made with: sqlite3 fluxion-nonutf8.db < fluxion-nonutf8.sql
CREATE TABLE IF NOT EXISTS records (collection TEXT NOT NULL,doc TEXT NOT NULL,ts INTEGER NOT NULL,data TEXT NOT NULL,PRIMARY KEY(collection, doc, ts));
CREATE TABLE IF NOT EXISTS key_values (collection TEXT NOT NULL,key TEXT NOT NULL,value TEXT NOT NULL,PRIMARY KEY(collection, key));
CREATE TABLE IF NOT EXISTS api_keys (api_key TEXT PRIMARY KEY,scope TEXT NOT NULL,deletable INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS idx_records_collection_doc_ts ON records(collection, doc, ts);
CREATE INDEX IF NOT EXISTS idx_records_collection_ts ON records(collection, ts);
CREATE INDEX IF NOT EXISTS idx_records_doc_ts ON records(doc, ts);
INSERT INTO records VALUES ('c', 'good', 1, 'a');
INSERT INTO records VALUES ('c', CAST(X'FFFE' AS TEXT), 1, 'x');
INSERT INTO records VALUES ('c', CAST(X'FFFE' AS TEXT), 2, 'y');
INSERT INTO records VALUES ('c', CAST(X'FFFE' AS TEXT), 3, 'z');
INSERT INTO records VALUES ('c2', CAST(X'FF' AS TEXT), 3, 'only a bad doc');
INSERT INTO key_values VALUES (CAST(X'FF' AS TEXT), 'k', 'v');
INSERT INTO key_values VALUES ('c', CAST(X'FE' AS TEXT), 'v');
INSERT INTO key_values VALUES ('c', 'k', 'v');
INSERT INTO api_keys VALUES ('', 'readonly', 1);
