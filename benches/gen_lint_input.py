#!/usr/bin/env python3
"""Generate the migration SQL inputs for benches/lint-vs-squawk.sh.

Usage: gen_lint_input.py OUT_DIR [--seed N] [--statements N] [--files N]

Writes, under OUT_DIR:
  big.sql          one file with --statements statements (default 80,000)
  half.sql         the first half of big.sql's statements (linearity check)
  small/NNNN.sql   --files files (default 2,000) of 2 to 6 statements each

The output depends only on the seed, so two runs with the same arguments
write byte-identical files.
"""

import argparse
import os
import random

TYPES = ["integer", "bigint", "text", "varchar(255)", "boolean", "timestamptz", "jsonb", "uuid", "numeric(12,2)"]
DEFAULTS = {
    "integer": "0",
    "bigint": "0",
    "text": "''",
    "varchar(255)": "'n/a'",
    "boolean": "false",
    "timestamptz": "now()",
    "jsonb": "'{}'::jsonb",
    "uuid": "gen_random_uuid()",
    "numeric(12,2)": "0.00",
}


class Generator:
    """Emit migration statements that refer to tables and columns it created."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.tables = []  # names of tables created so far
        self.columns = {}  # table name -> list of column names
        self.indexes = []  # (index name, table name)
        self.serial = 0

    def next_id(self):
        self.serial += 1
        return self.serial

    def create_table(self):
        name = f"app_{self.next_id()}_{self.rng.choice(['users', 'orders', 'events', 'tokens', 'accounts'])}"
        cols = ["id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"]
        names = ["id"]
        for i in range(self.rng.randint(3, 8)):
            col = f"c{i}_{self.rng.choice(['name', 'status', 'amount', 'created_at', 'owner_id', 'payload'])}"
            typ = self.rng.choice(TYPES)
            extra = " NOT NULL" if self.rng.random() < 0.3 else ""
            cols.append(f"{col} {typ}{extra}")
            names.append(col)
        self.tables.append(name)
        self.columns[name] = names
        return f"CREATE TABLE {name} (\n    " + ",\n    ".join(cols) + "\n);"

    def table(self):
        return self.rng.choice(self.tables)

    def column(self, table):
        return self.rng.choice(self.columns[table])

    def add_column(self):
        table = self.table()
        col = f"added_{self.next_id()}"
        typ = self.rng.choice(TYPES)
        self.columns[table].append(col)
        roll = self.rng.random()
        if roll < 0.4:
            return f"ALTER TABLE {table} ADD COLUMN {col} {typ};"
        if roll < 0.8:
            return f"ALTER TABLE {table} ADD COLUMN {col} {typ} DEFAULT {DEFAULTS[typ]};"
        return f"ALTER TABLE {table} ADD COLUMN {col} {typ} NOT NULL DEFAULT {DEFAULTS[typ]};"

    def create_index(self):
        table = self.table()
        name = f"idx_{self.next_id()}"
        self.indexes.append((name, table))
        cols = ", ".join(self.rng.sample(self.columns[table], min(len(self.columns[table]), self.rng.randint(1, 2))))
        unique = "UNIQUE " if self.rng.random() < 0.2 else ""
        concurrently = "CONCURRENTLY " if self.rng.random() < 0.3 else ""
        return f"CREATE {unique}INDEX {concurrently}{name} ON {table} ({cols});"

    def drop_index(self):
        if not self.indexes:
            return self.create_index()
        name, _ = self.indexes.pop(self.rng.randrange(len(self.indexes)))
        concurrently = "CONCURRENTLY " if self.rng.random() < 0.3 else ""
        return f"DROP INDEX {concurrently}IF EXISTS {name};"

    def foreign_key(self):
        table, target = self.table(), self.table()
        name = f"fk_{self.next_id()}"
        not_valid = " NOT VALID" if self.rng.random() < 0.4 else ""
        return (
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({self.column(table)}) "
            f"REFERENCES {target} (id){not_valid};"
        )

    def check_constraint(self):
        table = self.table()
        return f"ALTER TABLE {table} ADD CONSTRAINT ck_{self.next_id()} CHECK ({self.column(table)} IS NOT NULL);"

    def set_not_null(self):
        table = self.table()
        return f"ALTER TABLE {table} ALTER COLUMN {self.column(table)} SET NOT NULL;"

    def alter_type(self):
        table = self.table()
        return f"ALTER TABLE {table} ALTER COLUMN {self.column(table)} TYPE text;"

    def rename_column(self):
        table = self.table()
        old = self.column(table)
        if old == "id":
            return self.set_not_null()
        new = f"renamed_{self.next_id()}"
        cols = self.columns[table]
        cols[cols.index(old)] = new
        return f"ALTER TABLE {table} RENAME COLUMN {old} TO {new};"

    def update(self):
        table = self.table()
        col = self.column(table)
        if self.rng.random() < 0.5:
            return f"UPDATE {table} SET {col} = {col} WHERE id < {self.rng.randint(1, 100000)};"
        return f"UPDATE {table} SET {col} = NULL;"

    def insert(self):
        table = self.table()
        rows = ", ".join(f"({self.next_id()})" for _ in range(self.rng.randint(1, 3)))
        return f"INSERT INTO {table} (id) OVERRIDING SYSTEM VALUE VALUES {rows};"

    def delete(self):
        return f"DELETE FROM {self.table()} WHERE id = {self.rng.randint(1, 100000)};"

    def statement(self):
        if len(self.tables) < 5:
            return self.create_table()
        # Weights for a mix of schema changes and data changes.
        kinds = [
            (self.create_table, 8),
            (self.add_column, 18),
            (self.create_index, 14),
            (self.drop_index, 5),
            (self.foreign_key, 8),
            (self.check_constraint, 4),
            (self.set_not_null, 6),
            (self.alter_type, 3),
            (self.rename_column, 3),
            (self.update, 14),
            (self.insert, 12),
            (self.delete, 5),
        ]
        funcs, weights = zip(*kinds)
        return self.rng.choices(funcs, weights)[0]()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--statements", type=int, default=80000)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()

    os.makedirs(os.path.join(args.out_dir, "small"), exist_ok=True)

    gen = Generator(args.seed)
    statements = [gen.statement() for _ in range(args.statements)]
    with open(os.path.join(args.out_dir, "big.sql"), "w") as f:
        f.write("\n\n".join(statements) + "\n")
    with open(os.path.join(args.out_dir, "half.sql"), "w") as f:
        f.write("\n\n".join(statements[: args.statements // 2]) + "\n")

    # Each small file starts from a fresh generator that is given five tables
    # from earlier migrations, so most of its statements change those tables.
    for i in range(args.files):
        small = Generator(args.seed * 100000 + i)
        for name in ["users", "orders", "events", "tokens", "accounts"]:
            small.tables.append(name)
            small.columns[name] = ["id", "name", "owner_id", "created_at"]
        parts = [small.statement() for _ in range(small.rng.randint(2, 6))]
        with open(os.path.join(args.out_dir, "small", f"{i:04d}.sql"), "w") as f:
            f.write("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
