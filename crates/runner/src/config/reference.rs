//! The config reference, `docs/config.md`, generated from the config types themselves: every
//! key with its type, its default and its doc comment, read from the JSON schema that
//! `schemars` derives (which follows the serde attributes the parser uses). A test fails
//! when the committed file differs from what the code generates.

use serde_json::{Map, Value};

use super::Config;

/// The page, as `adn config --reference` prints it.
pub fn reference() -> String {
    let root = schema();
    let root = &root;
    let doc = Doc::of(root);
    let mut out = String::from(
        "# Config reference\n\n\
         Every key of a run config (TOML), generated from the code by `adn config \
         --reference`; a test fails when this page is stale. Unknown keys are errors at \
         every level, and `--set section.key=value` takes the same dotted keys. A key that \
         is left out takes its default; keys without a default are required. Defaults are \
         DifferNet's recipe.\n\n\
         Keys whose default is left out of a resolved `config.toml` (so that run ids made \
         before the key existed stay the same) say so in their description.\n",
    );
    let (top, sections) = doc.split(root);
    out.push_str("\n## Top level\n\n");
    for (key, prop) in &top {
        out.push_str(&doc.entry(key, prop, root));
    }
    for (name, prop) in &sections {
        let def = doc.resolve(prop);
        out.push_str(&format!("\n## `[{name}]`\n\n"));
        if let Some(d) = doc_of(prop).or_else(|| doc_of(def)) {
            out.push_str(&format!("{d}\n\n"));
        }
        for (key, p) in properties(def) {
            out.push_str(&doc.entry(&format!("{name}.{key}"), p, def));
        }
    }
    out
}

/// Every key, dotted, and whether it has a description: for the test that keeps the page
/// complete.
pub fn keys_without_description() -> Vec<String> {
    let root = schema();
    let root = &root;
    let doc = Doc::of(root);
    let (top, sections) = doc.split(root);
    let mut missing: Vec<String> = top
        .iter()
        .filter(|(_, p)| doc_of(p).is_none())
        .map(|(k, _)| k.to_string())
        .collect();
    for (name, prop) in &sections {
        for (key, p) in properties(doc.resolve(prop)) {
            if doc_of(p).is_none() {
                missing.push(format!("{name}.{key}"));
            }
        }
    }
    missing
}

/// Keys of an object schema with their schemas.
type Keys<'v> = Vec<(&'v str, &'v Value)>;

/// The config's JSON schema, as `schemars` derives it from the types and their serde
/// attributes.
fn schema() -> Value {
    schemars::schema_for!(Config).to_value()
}

/// Reading the schema: its definitions, for following references.
struct Doc<'a> {
    defs: &'a Map<String, Value>,
}

impl<'a> Doc<'a> {
    fn of(root: &'a Value) -> Doc<'a> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        Doc {
            defs: root
                .get("$defs")
                .and_then(Value::as_object)
                .unwrap_or_else(|| EMPTY.get_or_init(Map::new)),
        }
    }

    /// The root's plain keys and its tables (sections), each in key order.
    fn split<'v>(&self, root: &'v Value) -> (Keys<'v>, Keys<'v>) {
        properties(root)
            .into_iter()
            .partition(|(_, p)| self.resolve(p).get("properties").is_none())
    }

    /// `v` with a `$ref` (alone or in a one-element `allOf`) followed into `$defs`.
    fn resolve<'v>(&'v self, v: &'v Value) -> &'v Value {
        let reference = v.get("$ref").and_then(Value::as_str).or_else(|| {
            v.get("allOf")
                .and_then(Value::as_array)
                .filter(|a| a.len() == 1)
                .and_then(|a| a[0].get("$ref"))
                .and_then(Value::as_str)
        });
        match reference.and_then(|r| r.strip_prefix("#/$defs/")) {
            Some(name) => self.defs.get(name).unwrap_or(v),
            None => v,
        }
    }

    /// One key: its name, type and default on a line, its description, and an enum's
    /// values with theirs.
    fn entry(&self, key: &str, prop: &Value, parent: &Value) -> String {
        let required = parent
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| {
                r.iter()
                    .any(|k| Some(k.as_str()) == Some(key.rsplit('.').next()))
            });
        let default = match prop.get("default") {
            Some(Value::Null) => "absent".to_string(),
            Some(v) => format!("`{}`", toml_literal(v)),
            None if required => "required".to_string(),
            None => "absent".to_string(),
        };
        let mut out = format!(
            "- **`{key}`**: {}; default {default}.",
            self.type_name(prop)
        );
        if let Some(d) = doc_of(prop) {
            out.push_str(&format!(" {}", one_paragraph(d)));
        }
        out.push('\n');
        for (value, doc) in self.variants(prop) {
            match doc {
                Some(d) => out.push_str(&format!("  - `\"{value}\"`: {}\n", one_paragraph(&d))),
                None => out.push_str(&format!("  - `\"{value}\"`\n")),
            }
        }
        out
    }

    /// The variants of an enum-valued key, with their doc comments.
    fn variants(&self, prop: &Value) -> Vec<(String, Option<String>)> {
        let def = self.resolve(prop);
        if let Some(values) = def.get("enum").and_then(Value::as_array) {
            return values
                .iter()
                .filter_map(Value::as_str)
                .map(|v| (v.to_string(), None))
                .collect();
        }
        def.get("oneOf")
            .and_then(Value::as_array)
            .map(|alts| {
                alts.iter()
                    .flat_map(|alt| {
                        let doc = doc_of(alt).map(str::to_string);
                        let values: Vec<String> = match (alt.get("const"), alt.get("enum")) {
                            (Some(Value::String(c)), _) => vec![c.clone()],
                            (_, Some(Value::Array(vs))) => vs
                                .iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect(),
                            _ => Vec::new(),
                        };
                        values.into_iter().map(move |v| (v, doc.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A short type: `integer`, `number`, `string`, `boolean`, `path`, `[a, b]`, an enum's
    /// values, or `… (optional)`.
    fn type_name(&self, prop: &Value) -> String {
        let def = self.resolve(prop);
        let variants = self.variants(prop);
        if !variants.is_empty() {
            let names: Vec<String> = variants.iter().map(|(v, _)| format!("`\"{v}\"`")).collect();
            return format!("one of {}", names.join(", "));
        }
        if let Some(any) = def.get("anyOf").and_then(Value::as_array) {
            let inner: Vec<&Value> = any
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if inner.len() == 1 {
                return format!("{} (optional)", self.type_name(inner[0]));
            }
        }
        let types: Vec<&str> = match def.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let optional = types.contains(&"null");
        let base = match types.iter().find(|t| **t != "null").copied() {
            Some("array") => {
                let item = def
                    .get("items")
                    .map(|i| self.type_name(i))
                    .unwrap_or_else(|| "value".into());
                match (def.get("minItems"), def.get("maxItems")) {
                    (Some(a), Some(b)) if a == b => format!("array of {a} {item}s"),
                    _ => format!("array of {item}s"),
                }
            }
            Some("string") if def.get("format").is_none() => "string".to_string(),
            Some(t) => t.to_string(),
            None => "value".to_string(),
        };
        if optional {
            format!("{base} (optional)")
        } else {
            base
        }
    }
}

/// The keys of an object schema, in key order.
fn properties(v: &Value) -> Keys<'_> {
    v.get("properties")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, p)| (k.as_str(), p)).collect())
        .unwrap_or_default()
}

fn doc_of(v: &Value) -> Option<&str> {
    v.get("description").and_then(Value::as_str)
}

/// A doc comment on one line: its paragraphs joined.
fn one_paragraph(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A JSON default written as TOML would write it.
fn toml_literal(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.1}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md")
    }

    /// Every key with a stated default, dotted, and that default as a TOML literal.
    fn stated_defaults() -> Vec<(String, String)> {
        let root = schema();
        let doc = Doc::of(&root);
        let (top, sections) = doc.split(&root);
        let mut out = Vec::new();
        let mut add = |key: String, p: &Value| {
            if let Some(d) = p.get("default").filter(|d| !d.is_null()) {
                out.push((key, toml_literal(d)));
            }
        };
        for (key, p) in top {
            add(key.to_string(), p);
        }
        for (name, prop) in sections {
            for (key, p) in properties(doc.resolve(prop)) {
                add(format!("{name}.{key}"), p);
            }
        }
        out
    }

    #[test]
    fn every_stated_default_is_the_default_the_parser_applies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "experiment = \"t\"\n[data]\nkind = \"smoke\"\nroot = \"d\"\ncategory = \"s\"\n",
        )
        .unwrap();
        let plain = Config::load(&path, &[]).unwrap();
        let defaults = stated_defaults();
        assert!(defaults.len() > 30, "{defaults:?}");
        for (key, value) in defaults {
            // Setting a key to its stated default changes nothing, not even the run id
            // (which hashes the resolved config).
            let set = Config::load(&path, &[format!("{key}={value}")])
                .unwrap_or_else(|e| panic!("{key}={value}: {e:#}"));
            assert_eq!(set, plain, "{key}={value}");
            assert_eq!(set.run_id(), plain.run_id(), "{key}={value}");
        }
    }

    #[test]
    fn every_key_has_a_doc_comment() {
        let missing = keys_without_description();
        assert!(
            missing.is_empty(),
            "keys without a doc comment: {missing:?}"
        );
    }

    #[test]
    fn the_committed_reference_is_what_the_code_generates() {
        let generated = reference();
        // Every section and a few keys of each, so that a schema change cannot empty it.
        for key in [
            "## `[data]`",
            "## `[model]`",
            "## `[flow]`",
            "## `[train]`",
            "## `[test]`",
            "**`experiment`**",
            "**`train.lr`**: number; default `0.0002`",
            "**`model.precision`**: one of `\"fp32\"`, `\"bf16\"`, `\"auto\"`; default `\"fp32\"`",
            "**`data.root`**",
            "**`flow.coupling_blocks`**: integer; default `8`",
            "**`train.betas`**: array of 2 numbers; default `[0.8, 0.8]`",
        ] {
            assert!(generated.contains(key), "{key} is not in:\n{generated}");
        }
        let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/config.md is stale; regenerate it with \
             `cargo run -p adn-runner -- config --reference > docs/config.md`"
        );
    }
}
