#!/usr/bin/env python3
"""Writes the SQLite fixtures of sqlite_test.go (run once; the .db files are committed).

The content is a function of the row number, which the Go test computes again:
  records(collection, doc, ts, data): row i (0 <= i < n) is
    collection "c" + str(i % 3), doc "d" + str(i % 7), ts 1000 + i, data "v" + str(i) * (i % 5)
  plus one record whose data is 5000 bytes (overflow pages) and one with ts 2**62.
  (fluxion-tiny.db, the fuzz seed, has 3 numbered records.)
  key_values: ("c0", "k" + str(j), "val" + str(j)) for j < 20.
  api_keys: the master (deletable 0) and two more.
"""
import os, sqlite3, sys

def make(path, page_size, n, rowid_alias):
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA page_size={page_size}")
    idcol = "id INTEGER PRIMARY KEY AUTOINCREMENT, " if rowid_alias else ""
    db.execute(f"CREATE TABLE records ({idcol}collection TEXT NOT NULL, doc TEXT NOT NULL, ts INTEGER NOT NULL, "
               "data TEXT, PRIMARY KEY (collection, doc, ts))".replace(", PRIMARY KEY (collection, doc, ts)",
               ", UNIQUE (collection, doc, ts)" if rowid_alias else ", PRIMARY KEY (collection, doc, ts)"))
    db.execute("CREATE TABLE key_values (collection TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (collection, key))")
    db.execute("CREATE TABLE api_keys (api_key TEXT PRIMARY KEY, scope TEXT NOT NULL, deletable INTEGER NOT NULL DEFAULT 1)")
    for i in range(n):
        db.execute("INSERT INTO records (collection, doc, ts, data) VALUES (?, ?, ?, ?)",
                   ("c%d" % (i % 3), "d%d" % (i % 7), 1000 + i, ("v%d" % i) * (i % 5)))
    db.execute("INSERT INTO records (collection, doc, ts, data) VALUES ('big', 'doc', 7, ?)", ("x" * 5000,))
    db.execute("INSERT INTO records (collection, doc, ts, data) VALUES ('big', 'doc', ?, 'far')", (2**62,))
    for j in range(20):
        db.execute("INSERT INTO key_values VALUES ('c0', ?, ?)", ("k%d" % j, "val%d" % j))
    db.execute("INSERT INTO api_keys VALUES ('the-master', 'read_write_delete', 0)")
    db.execute("INSERT INTO api_keys VALUES ('reader-1', 'readonly', 1)")
    db.execute("INSERT INTO api_keys VALUES ('writer-1', 'read_write', 1)")
    db.commit()
    db.close()

here = os.path.dirname(os.path.abspath(__file__))
make(os.path.join(here, "fluxion-4k.db"), 4096, 1500, False)
make(os.path.join(here, "fluxion-512-rowid.db"), 512, 800, True)
make(os.path.join(here, "fluxion-tiny.db"), 512, 3, False)  # the fuzz seed: small, so mutations stay fast
