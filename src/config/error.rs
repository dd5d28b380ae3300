//! Config errors that name the file, line, column and key path, and the
//! locator that finds a key path's line in the YAML text.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A config error: `FILE:LINE:COLUMN: KEY.PATH: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, *.line, *.column, .path, .message))]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the error is not about the file's content (I/O).
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    /// Like `peers[1].allowAsIn`; empty for errors about the whole file.
    pub path: String,
    pub message: String,
}

fn render(file: &str, line: usize, column: usize, path: &str, message: &str) -> String {
    let mut s = file.to_string();
    if line > 0 {
        s.push_str(&format!(":{line}"));
        if column > 0 {
            s.push_str(&format!(":{column}"));
        }
    }
    if !path.is_empty() {
        s.push_str(&format!(": {path}"));
    }
    s.push_str(&format!(": {message}"));
    s
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// A key path into the config, e.g. `peers[1].allowAsIn`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct KeyPath(pub(super) Vec<Seg>);

impl KeyPath {
    pub(super) fn key(&self, k: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    pub(super) fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    fn from_serde(path: &serde_path_to_error::Path) -> KeyPath {
        use serde_path_to_error::Segment;
        let mut segs = Vec::new();
        for seg in path.iter() {
            match seg {
                Segment::Seq { index } => segs.push(Seg::Index(*index)),
                Segment::Map { key } => segs.push(Seg::Key(key.clone())),
                Segment::Enum { .. } => {}
                Segment::Unknown => break,
            }
        }
        KeyPath(segs)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A position in the text: 1-based line and column, byte index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
    index: usize,
}

impl Pos {
    fn of(loc: &serde_yaml_ng::Location) -> Pos {
        Pos {
            line: loc.line(),
            column: loc.column(),
            index: loc.index(),
        }
    }
}

/// The position of the node at `path`, or of the deepest existing node on
/// the way to it. Walks the document again with a seed that follows the
/// path and fails on purpose at the target: the YAML deserializer then fills
/// in the target's position, which it knows exactly (block and flow style,
/// quoted or not). `None` only when the text is not valid YAML.
fn locate(text: &str, path: &KeyPath) -> Option<Pos> {
    locate_nth(text, path, 0)
}

/// Like [`locate`], for the `nth` (0-based) occurrence of the last key of
/// `path` in its mapping (for duplicate keys).
fn locate_nth(text: &str, path: &KeyPath, nth: usize) -> Option<Pos> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    match Locate(&path.0, nth, false).deserialize(de) {
        Ok(()) => None,
        Err(e) => e.location().map(|l| Pos::of(&l)),
    }
}

/// The position of the last key of `path` itself (not its value), for an
/// unknown key.
fn locate_key(text: &str, path: &KeyPath) -> Option<Pos> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    match Locate(&path.0, 0, true).deserialize(de) {
        Ok(()) => None,
        Err(e) => e.location().map(|l| Pos::of(&l)),
    }
}

/// Line and column of the node at `path` in YAML document `document`
/// (0-based) of a multi-document `text`, or of the deepest existing node on
/// the way to it.
pub(super) fn locate_in_document(
    text: &str,
    document: usize,
    path: &KeyPath,
) -> Option<(usize, usize)> {
    let de = serde_yaml_ng::Deserializer::from_str(text).nth(document)?;
    match Locate(&path.0, 0, false).deserialize(de) {
        Ok(()) => None,
        Err(e) => e.location().map(|l| (l.line(), l.column())),
    }
}

impl KeyPath {
    /// `spec.peers[1].name` read back (keys without `.`, `[` or `]`).
    pub(super) fn parse(path: &str) -> KeyPath {
        let mut segs = Vec::new();
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                if open > 0 {
                    segs.push(Seg::Key(rest[..open].to_string()));
                }
                rest = &rest[open..];
                while let Some(close) = rest.find(']') {
                    if let Ok(i) = rest[1..close].parse() {
                        segs.push(Seg::Index(i));
                    }
                    rest = &rest[close + 1..];
                }
            } else {
                segs.push(Seg::Key(rest.to_string()));
            }
        }
        KeyPath(segs)
    }
}

/// The path still to walk, how many matches of its last key to skip, and
/// whether to stop at that key rather than at its value.
struct Locate<'a>(&'a [Seg], usize, bool);

/// A mapping key, failing on purpose when it is the one looked for.
struct Key<'a> {
    want: &'a str,
    stop: bool,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    /// The key when it is a string.
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    // Failing inside the visit gives the error the key's own position.
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        if self.stop && s == self.want {
            return Err(here());
        }
        Ok(Some(s.to_string()))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn here<E: de::Error>() -> E {
    E::custom("located")
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if let Some((Seg::Key(want), rest)) = self.0.split_first() {
            let mut skip = if rest.is_empty() { self.1 } else { 0 };
            loop {
                let stop = self.2 && rest.is_empty() && skip == 0;
                let Some(key) = map.next_key_seed(Key { want, stop })? else {
                    break;
                };
                if key.as_deref() == Some(want.as_str()) {
                    if skip == 0 {
                        return map.next_value_seed(Locate(rest, self.1, self.2));
                    }
                    skip -= 1;
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        Err(here())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some((Seg::Index(want), rest)) = self.0.split_first() {
            let mut i = 0;
            while i < *want {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Err(here());
                }
                i += 1;
            }
            if seq
                .next_element_seed(Locate(rest, self.1, self.2))?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(here())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(here())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(here())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(here())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(here())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(here())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(here())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(here())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(here())
    }
}

impl ConfigError {
    /// An error about the node at `path` (found in `text`).
    pub(super) fn at(file: &str, text: &str, path: &KeyPath, message: String) -> ConfigError {
        Self::at_pos(file, locate(text, path), path, message)
    }

    /// At `pos`, or the top of the file when it is unknown.
    fn at_pos(file: &str, pos: Option<Pos>, path: &KeyPath, message: String) -> ConfigError {
        let pos = pos.unwrap_or(Pos {
            line: 1,
            column: 1,
            index: 0,
        });
        ConfigError {
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message,
        }
    }

    /// A YAML syntax error (no key path).
    pub(super) fn syntax(file: &str, err: &serde_yaml_ng::Error) -> ConfigError {
        let pos = err.location().map(|l| Pos::of(&l));
        let mut message = err.to_string();
        if let Some(p) = pos {
            message = message.replacen(&format!(" at line {} column {}", p.line, p.column), "", 1);
        }
        ConfigError {
            file: file.to_string(),
            line: pos.map_or(1, |p| p.line),
            column: pos.map_or(1, |p| p.column),
            path: String::new(),
            message: format!("YAML syntax error: {message}"),
        }
    }

    /// An error from deserializing the (syntactically valid) document.
    pub(super) fn from_serde(
        file: &str,
        text: &str,
        err: serde_path_to_error::Error<serde_yaml_ng::Error>,
    ) -> ConfigError {
        let e = Explained::of(err);
        // The YAML deserializer knows the position of the scalar or key that
        // failed, but an error raised after a value was read (a `FromStr`
        // check, an untagged enum) only gets the enclosing mapping's
        // position. The locator finds the node of the key path itself; an
        // ancestor's position is always earlier, so take the later one.
        let located = match (e.key_error, e.duplicate) {
            (true, _) => None,
            (false, true) => locate_nth(text, &e.path, 1),
            (false, false) => locate(text, &e.path),
        };
        let pos = match (e.yaml_pos, located) {
            (Some(a), Some(b)) => Some(if b.index > a.index { b } else { a }),
            (a, b) => a.or(b),
        };
        Self::at_pos(file, pos, &e.path, e.message)
    }

    /// An error from deserializing a document kroute derived from `text`
    /// (peer templates expanded): the YAML position is in the derived
    /// document, so the node is found in `text` by its key path alone (an
    /// unknown key: the key itself).
    pub(super) fn from_serde_derived(
        file: &str,
        text: &str,
        err: serde_path_to_error::Error<serde_yaml_ng::Error>,
    ) -> ConfigError {
        let e = Explained::of(err);
        let pos = match &e.unknown_key {
            Some(key) => locate_key(text, &e.path.key(key)),
            None => locate(text, &e.path),
        };
        Self::at_pos(file, pos, &e.path, e.message)
    }
}

/// A serde error as kroute words it: the key path it is about and the
/// message, with what the YAML deserializer knew of its position.
struct Explained {
    path: KeyPath,
    message: String,
    yaml_pos: Option<Pos>,
    /// An unknown key (the path names its mapping): this key.
    unknown_key: Option<String>,
    key_error: bool,
    duplicate: bool,
}

impl Explained {
    fn of(err: serde_path_to_error::Error<serde_yaml_ng::Error>) -> Explained {
        let mut path = KeyPath::from_serde(err.path());
        let inner = err.into_inner();
        let yaml_pos = inner.location().map(|l| Pos::of(&l));
        let raw = bare_message(&inner, yaml_pos, &path);
        let mut unknown_key = None;
        let mut duplicate = false;
        let message = match Ticked::parse(&raw) {
            Some(t) if raw.starts_with("unknown field") => {
                // Name the mapping that has the key; the YAML position is
                // the key's own.
                if path.0.last() == Some(&Seg::Key(t.name.clone())) {
                    path.0.pop();
                }
                let m = format!("unknown key {:?}{}", t.name, suggest(&t.name, &t.expected));
                unknown_key = Some(t.name);
                m
            }
            Some(t) if raw.starts_with("unknown variant") => {
                format!(
                    "unknown value {:?}{}",
                    t.name,
                    suggest(&t.name, &t.expected)
                )
            }
            Some(t) if raw.starts_with("missing field") => {
                path = path.key(&t.name);
                "required key is missing".to_string()
            }
            Some(t) if raw.starts_with("duplicate field") => {
                if path.0.last() != Some(&Seg::Key(t.name.clone())) {
                    path = path.key(&t.name);
                }
                duplicate = true;
                format!("key {:?} is given more than once", t.name)
            }
            _ if raw.starts_with("data did not match any variant of untagged enum Raw") => {
                "expected `all`, `none`, a policy name or a list of policy names".to_string()
            }
            _ => raw,
        };
        Explained {
            path,
            message,
            yaml_pos,
            key_error: unknown_key.is_some(),
            unknown_key,
            duplicate,
        }
    }
}

/// The serde message without the ` at line L column C` suffix and the
/// `path: ` prefix the YAML deserializer adds to its Display.
fn bare_message(err: &serde_yaml_ng::Error, pos: Option<Pos>, path: &KeyPath) -> String {
    let mut s = err.to_string();
    if let Some(p) = pos {
        for suffix in [
            format!(" at line {} column {}", p.line, p.column),
            format!(" at position {}", p.index),
        ] {
            if let Some(stripped) = s.strip_suffix(&suffix) {
                s = stripped.to_string();
                break;
            }
        }
    }
    // The prefix is the key path of the node the YAML deserializer was at:
    // the full path or one of its ancestors.
    for n in (1..=path.0.len()).rev() {
        let prefix = format!("{}: ", KeyPath(path.0[..n].to_vec()));
        if let Some(stripped) = s.strip_prefix(&prefix) {
            return stripped.to_string();
        }
    }
    if let Some((head, tail)) = s.split_once(": ") {
        let looks_like_path = !head.is_empty()
            && !head.contains(char::is_whitespace)
            && head
                .chars()
                .all(|c| c.is_alphanumeric() || "._-[]?".contains(c));
        if looks_like_path {
            return tail.to_string();
        }
    }
    s
}

/// The names in a serde "unknown field `x`, expected one of `a`, `b`" style
/// message.
struct Ticked {
    name: String,
    expected: Vec<String>,
}

impl Ticked {
    fn parse(msg: &str) -> Option<Ticked> {
        let mut parts = msg.split('`').skip(1).step_by(2).map(str::to_string);
        let name = parts.next()?;
        Some(Ticked {
            name,
            expected: parts.collect(),
        })
    }
}

/// ` (did you mean X?)` when a name is within edit distance 2 (ignoring
/// case) of `got`, else the list of accepted names.
fn suggest(got: &str, expected: &[String]) -> String {
    let best = expected
        .iter()
        .map(|e| (distance(&got.to_lowercase(), &e.to_lowercase()), e))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, e)) if d <= 2 => format!(" (did you mean {e}?)"),
        Some(_) => format!(" (expected one of: {})", expected.join(", ")),
        None => " (no keys are accepted here)".to_string(),
    }
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
