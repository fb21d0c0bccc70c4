//! Column type changes that PostgreSQL makes without rewriting the table.
//!
//! `ALTER COLUMN ... TYPE` skips the rewrite when the old type converts to
//! the new one as a binary-coercible cast whose length check cannot fail.
//! The cases here were each checked on PostgreSQL 15 by comparing
//! `pg_class.relfilenode` before and after; everything else is assumed to
//! rewrite.

/// A column type reduced to a canonical name and its modifiers, e.g.
/// `varchar` with `[20]` or `numeric` with `[10, 2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlType {
    pub name: String,
    pub modifiers: Vec<i64>,
}

impl SqlType {
    /// Reads a type as `format_type()` prints it, e.g.
    /// `character varying(20)`, `numeric(10,2)`, `text` or `integer[]`.
    pub fn parse(text: &str) -> Option<SqlType> {
        let text = text.trim().to_ascii_lowercase();
        let (name, modifiers) = match text.split_once('(') {
            Some((name, rest)) => {
                let (inside, after) = rest.split_once(')')?;
                let modifiers = inside
                    .split(',')
                    .map(|m| m.trim().parse::<i64>().ok())
                    .collect::<Option<Vec<_>>>()?;
                (format!("{}{}", name.trim(), after.trim()), modifiers)
            }
            None => (text.clone(), Vec::new()),
        };
        Some(SqlType {
            name: canonical_name(&name),
            modifiers,
        })
    }

    /// Reads the type of a parse tree `TypeName`; `None` when a modifier is
    /// not an integer literal.
    pub fn from_type_name(type_name: &pg_query::protobuf::TypeName) -> Option<SqlType> {
        use pg_query::protobuf::a_const::Val;
        use pg_query::NodeEnum;

        let names: Vec<&str> = type_name
            .names
            .iter()
            .filter_map(|n| match &n.node {
                Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                _ => None,
            })
            .filter(|n| *n != "pg_catalog")
            .collect();
        let mut name = canonical_name(&names.join("."));
        if !type_name.array_bounds.is_empty() {
            name.push_str("[]");
        }
        let mut modifiers = Vec::new();
        for modifier in &type_name.typmods {
            match &modifier.node {
                Some(NodeEnum::AConst(c)) => match &c.val {
                    Some(Val::Ival(i)) => modifiers.push(i64::from(i.ival)),
                    _ => return None,
                },
                _ => return None,
            }
        }
        Some(SqlType { name, modifiers })
    }
}

/// Maps the spellings of one built-in type to a single name.
fn canonical_name(name: &str) -> String {
    let (base, array) = match name.strip_suffix("[]") {
        Some(base) => (base.trim(), "[]"),
        None => (name.trim(), ""),
    };
    let base = match base {
        "character varying" | "varchar" => "varchar",
        "character" | "char" | "bpchar" => "bpchar",
        "integer" | "int" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "decimal" | "numeric" => "numeric",
        "double precision" | "float8" => "float8",
        "real" | "float4" => "float4",
        "boolean" | "bool" => "bool",
        "timestamp with time zone" | "timestamptz" => "timestamptz",
        "timestamp without time zone" | "timestamp" => "timestamp",
        "time without time zone" | "time" => "time",
        "time with time zone" | "timetz" => "timetz",
        other => other,
    };
    format!("{base}{array}")
}

/// Returns true when changing a column from `old` to `new` keeps the table
/// as it is (no rewrite, no index rebuild).
pub fn change_skips_rewrite(old: &SqlType, new: &SqlType) -> bool {
    if old == new {
        return true;
    }
    match (old.name.as_str(), new.name.as_str()) {
        ("varchar", "varchar") => match (old.modifiers.as_slice(), new.modifiers.as_slice()) {
            (_, []) => true,
            ([old_len], [new_len]) => new_len >= old_len,
            _ => false,
        },
        ("varchar", "text") => true,
        ("text", "varchar") => new.modifiers.is_empty(),
        ("numeric", "numeric") => {
            let precision_scale = |m: &[i64]| match m {
                [p] => Some((*p, 0)),
                [p, s] => Some((*p, *s)),
                _ => None,
            };
            match (precision_scale(&old.modifiers), new.modifiers.as_slice()) {
                (_, []) => true,
                (Some((old_p, old_s)), new_mods) => match precision_scale(new_mods) {
                    Some((new_p, new_s)) => new_s == old_s && new_p >= old_p,
                    None => false,
                },
                (None, _) => false,
            }
        }
        _ => false,
    }
}
