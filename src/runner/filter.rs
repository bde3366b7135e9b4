//! The job filter grammar every client shares: `gradlab ls --filter`, the dashboard's filter box
//! and the Python client's `filter=` all send the text, and the server parses it here, once.
//!
//! ```text
//! test_accuracy >= 0.9 and depth <= 8 and label.team != vision and finished > now-7d
//! ```
//!
//! Conditions are joined by `and` (or a comma). Each is one of
//! - `FIELD OP VALUE` with OP one of `=`, `!=`, `<`, `<=`, `>`, `>=`; numeric fields: `id`,
//!   `sweep`, `depth`, `width` (the widest hidden layer), `steps` (steps done),
//!   `test_accuracy`, `test_loss`; times: `created`, `started`, `finished`, whose values are
//!   `2026-11-01`, `2026-11-01T12:30:00Z` (UTC), `now` or `now-7d` (units ms, s, m, h, d, w);
//! - `state`, `activation` or `verdict` with `=`, `!=`, `in (a, b)` or `not in (a, b)`;
//! - `name = TEXT`, `name != TEXT`, `name ~ TEXT` (contains);
//! - labels: `label.KEY = V`, `label.KEY != V` (also true of jobs without KEY, as in
//!   Kubernetes selectors), `label.KEY` or `label.KEY exists`, `!label.KEY`.
//!
//! A condition on a result or a time (`test_accuracy`, `finished`, ...) matches only jobs that
//! have one: an unfinished job is neither above nor below any accuracy. Values with spaces or
//! operator characters go in quotes ('...' or "...", backslash escapes the quote).

use std::fmt;

use crate::engine::activation::Activation;
use crate::engine::verdict::Verdict;

use super::model::JobState;
use super::when;

/// One parsed condition; a filter is all of them (AND).
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Num {
        field: NumField,
        op: Cmp,
        value: NumValue,
    },
    /// `field IN values`, or NOT IN when `negate`.
    OneOf {
        field: TextField,
        negate: bool,
        values: Vec<String>,
    },
    NameContains(String),
    Label {
        key: String,
        test: LabelTest,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NumValue {
    Int(i64),
    Real(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumField {
    Id,
    Sweep,
    Depth,
    Width,
    Steps,
    TestAccuracy,
    TestLoss,
    Created,
    Started,
    Finished,
}

impl NumField {
    const ALL: [(&'static str, NumField); 10] = [
        ("id", NumField::Id),
        ("sweep", NumField::Sweep),
        ("depth", NumField::Depth),
        ("width", NumField::Width),
        ("steps", NumField::Steps),
        ("test_accuracy", NumField::TestAccuracy),
        ("test_loss", NumField::TestLoss),
        ("created", NumField::Created),
        ("started", NumField::Started),
        ("finished", NumField::Finished),
    ];

    /// The jobs table's column holding it.
    pub fn column(self) -> &'static str {
        match self {
            NumField::Id => "id",
            NumField::Sweep => "sweep_id",
            NumField::Depth => "depth",
            NumField::Width => "width",
            NumField::Steps => "steps_done",
            NumField::TestAccuracy => "test_accuracy",
            NumField::TestLoss => "test_loss",
            NumField::Created => "created_ms",
            NumField::Started => "started_ms",
            NumField::Finished => "finished_ms",
        }
    }

    fn is_time(self) -> bool {
        matches!(self, NumField::Created | NumField::Started | NumField::Finished)
    }

    fn is_real(self) -> bool {
        matches!(self, NumField::TestAccuracy | NumField::TestLoss)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextField {
    State,
    Activation,
    Verdict,
    Name,
}

impl TextField {
    pub fn column(self) -> &'static str {
        match self {
            TextField::State => "state",
            TextField::Activation => "activation",
            TextField::Verdict => "verdict",
            TextField::Name => "name",
        }
    }

    /// The value as stored (canonical names), or why it is not one.
    fn canonical(self, value: &str) -> Result<String, String> {
        match self {
            TextField::State => value.parse::<JobState>().map(|s| s.as_str().to_string()),
            TextField::Activation => value.parse::<Activation>().map(|a| a.to_string()).map_err(|e| e.to_string()),
            TextField::Verdict => value.parse::<Verdict>().map(|v| v.as_str().to_string()),
            TextField::Name => Ok(value.to_string()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub fn sql(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "<>",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelTest {
    Is(String),
    /// Not labelled with this value, including not labelled at all.
    IsNot(String),
    Exists,
    Missing,
}

/// What `ListJobs` orders by; ties (and `Created`) go by id, which is creation order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    Created,
    TestAccuracy,
    TestLoss,
    Depth,
    Width,
    Steps,
    Started,
    Finished,
}

impl SortKey {
    pub const NAMES: [(&'static str, SortKey); 8] = [
        ("created", SortKey::Created),
        ("test_accuracy", SortKey::TestAccuracy),
        ("test_loss", SortKey::TestLoss),
        ("depth", SortKey::Depth),
        ("width", SortKey::Width),
        ("steps", SortKey::Steps),
        ("started", SortKey::Started),
        ("finished", SortKey::Finished),
    ];

    /// The column sorted on; `None` for creation order, which is the id.
    pub fn column(self) -> Option<&'static str> {
        match self {
            SortKey::Created => None,
            SortKey::TestAccuracy => Some("test_accuracy"),
            SortKey::TestLoss => Some("test_loss"),
            SortKey::Depth => Some("depth"),
            SortKey::Width => Some("width"),
            SortKey::Steps => Some("steps_done"),
            SortKey::Started => Some("started_ms"),
            SortKey::Finished => Some("finished_ms"),
        }
    }

    /// Whether the column holds floats (else integers).
    pub fn is_real(self) -> bool {
        matches!(self, SortKey::TestAccuracy | SortKey::TestLoss)
    }
}

impl std::str::FromStr for SortKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        SortKey::NAMES.iter().find(|(n, _)| *n == t).map(|&(_, k)| k).ok_or_else(|| {
            let names: Vec<&str> = SortKey::NAMES.iter().map(|(n, _)| *n).collect();
            format!("unknown sort key {s:?}; known: {}", names.join(", "))
        })
    }
}

/// Where and why a filter does not parse; `column` counts characters from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for FilterError {}

/// Parses a filter; `now_ms` is what `now` means in time values.
pub fn parse(text: &str, now_ms: i64) -> Result<Vec<Cond>, FilterError> {
    let tokens = lex(text)?;
    Parser { tokens, pos: 0, end: text.chars().count() + 1, now_ms }.filter()
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Op(&'static str),
}

struct Token {
    tok: Tok,
    column: usize,
}

impl Token {
    fn describe(&self) -> String {
        match &self.tok {
            Tok::Word(w) => format!("{w:?}"),
            Tok::Quoted(q) => format!("the quoted {q:?}"),
            Tok::Op(o) => format!("{o:?}"),
        }
    }
}

const OPS: [&str; 12] = ["!=", "<=", ">=", "==", "=", "<", ">", "~", "!", "(", ")", ","];

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !"=!<>~(),'\"".contains(c)
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(FilterError { column, message: format!("the quote {c} is never closed") }),
                    Some('\\') if chars.get(i + 1).is_some_and(|&n| n == c || n == '\\') => {
                        s.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&x) => {
                        s.push(x);
                        i += 1;
                    }
                }
            }
            out.push(Token { tok: Tok::Quoted(s), column });
        } else if let Some(op) = OPS.iter().find(|op| chars[i..].starts_with(&op.chars().collect::<Vec<_>>())) {
            i += op.chars().count();
            out.push(Token { tok: Tok::Op(if *op == "==" { "=" } else { op }), column });
        } else {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            out.push(Token { tok: Tok::Word(chars[start..i].iter().collect()), column });
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// The column just past the text, where "expected ..." at the end points.
    end: usize,
    now_ms: i64,
}

fn keyword(tok: &Tok, word: &str) -> bool {
    matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(word))
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self, expected: &str) -> Result<&Token, FilterError> {
        match self.tokens.get(self.pos) {
            Some(_) => {
                self.pos += 1;
                Ok(&self.tokens[self.pos - 1])
            }
            None => Err(FilterError { column: self.end, message: format!("expected {expected}, found the end") }),
        }
    }

    fn error<T>(&self, at: &Token, message: String) -> Result<T, FilterError> {
        Err(FilterError { column: at.column, message })
    }

    fn filter(&mut self) -> Result<Vec<Cond>, FilterError> {
        let mut conds = Vec::new();
        if self.tokens.is_empty() {
            return Ok(conds);
        }
        loop {
            conds.push(self.cond()?);
            match self.peek() {
                None => return Ok(conds),
                Some(t) if keyword(&t.tok, "and") || t.tok == Tok::Op(",") => self.pos += 1,
                Some(t) => {
                    let msg = format!("expected \"and\" before {}", t.describe());
                    return self.error(t, msg);
                }
            }
        }
    }

    fn cond(&mut self) -> Result<Cond, FilterError> {
        let first = self.next("a condition")?;
        let column = first.column;
        let tok = first.tok.clone();
        if tok == Tok::Op("!") {
            let t = self.next("a label after \"!\", like !label.keep")?;
            return match label_key(&t.tok) {
                Some(key) => Ok(Cond::Label { key, test: LabelTest::Missing }),
                None => {
                    let msg = format!("expected a label after \"!\", like !label.keep; found {}", t.describe());
                    Err(FilterError { column: t.column, message: msg })
                }
            };
        }
        let Tok::Word(name) = &tok else {
            let at = &self.tokens[self.pos - 1];
            return self.error(at, format!("expected a field name, found {}", at.describe()));
        };
        if let Some(key) = label_key(&tok) {
            return self.label(key);
        }
        if name.starts_with("label.") || name.starts_with("labels.") {
            return Err(FilterError { column, message: "a label needs a key, like label.team".into() });
        }
        let lower = name.to_ascii_lowercase();
        if let Some(&(_, field)) = NumField::ALL.iter().find(|(n, _)| *n == lower) {
            return self.num(field, name.clone());
        }
        let text = match lower.as_str() {
            "state" => TextField::State,
            "activation" => TextField::Activation,
            "verdict" => TextField::Verdict,
            "name" => TextField::Name,
            _ => {
                let mut known: Vec<&str> = NumField::ALL.iter().map(|(n, _)| *n).collect();
                known.extend(["state", "activation", "verdict", "name", "label.KEY"]);
                return Err(FilterError {
                    column,
                    message: format!("unknown field {name:?}; fields: {}", known.join(", ")),
                });
            }
        };
        self.text(text)
    }

    fn label(&mut self, key: String) -> Result<Cond, FilterError> {
        let test = match self.peek().map(|t| t.tok.clone()) {
            Some(Tok::Op("=")) => {
                self.pos += 1;
                LabelTest::Is(self.value("a label value")?.0)
            }
            Some(Tok::Op("!=")) => {
                self.pos += 1;
                LabelTest::IsNot(self.value("a label value")?.0)
            }
            Some(t) if keyword(&t, "exists") => {
                self.pos += 1;
                LabelTest::Exists
            }
            _ => LabelTest::Exists,
        };
        Ok(Cond::Label { key, test })
    }

    /// A word or a quoted string, and its column.
    fn value(&mut self, expected: &str) -> Result<(String, usize), FilterError> {
        let t = self.next(expected)?;
        match &t.tok {
            Tok::Word(w) => Ok((w.clone(), t.column)),
            Tok::Quoted(q) => Ok((q.clone(), t.column)),
            Tok::Op(_) => {
                let msg = format!("expected {expected}, found {}", t.describe());
                Err(FilterError { column: t.column, message: msg })
            }
        }
    }

    fn cmp(&mut self, field: &str) -> Result<Cmp, FilterError> {
        let t = self.next(&format!("an operator after {field}"))?;
        Ok(match t.tok {
            Tok::Op("=") => Cmp::Eq,
            Tok::Op("!=") => Cmp::Ne,
            Tok::Op("<") => Cmp::Lt,
            Tok::Op("<=") => Cmp::Le,
            Tok::Op(">") => Cmp::Gt,
            Tok::Op(">=") => Cmp::Ge,
            _ => {
                let msg = format!("expected one of = != < <= > >= after {field}, found {}", t.describe());
                return Err(FilterError { column: t.column, message: msg });
            }
        })
    }

    fn num(&mut self, field: NumField, name: String) -> Result<Cond, FilterError> {
        let op = self.cmp(&name)?;
        let what = if field.is_time() { "a time" } else { "a number" };
        let (text, column) = self.value(&format!("{what} after {name}"))?;
        let bad = |message: String| FilterError { column, message };
        let value = if field.is_time() {
            NumValue::Int(self.time(&text).map_err(|m| bad(format!("{name}: {m}")))?)
        } else if field.is_real() {
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() => NumValue::Real(x),
                _ => return Err(bad(format!("{name} takes a number, not {text:?}"))),
            }
        } else {
            match text.parse::<i64>() {
                Ok(n) => NumValue::Int(n),
                _ => return Err(bad(format!("{name} takes a whole number, not {text:?}"))),
            }
        };
        Ok(Cond::Num { field, op, value })
    }

    /// Unix ms of `now`, `now-7d` or a date.
    fn time(&self, text: &str) -> Result<i64, String> {
        let lower = text.to_ascii_lowercase();
        if lower == "now" {
            return Ok(self.now_ms);
        }
        if let Some(ago) = lower.strip_prefix("now-") {
            let d = when::duration(ago)?;
            return Ok(self.now_ms.saturating_sub(d.as_millis().min(i64::MAX as u128) as i64));
        }
        when::date_ms(text).map_err(|e| format!("{e}, now or now-7d"))
    }

    fn text(&mut self, field: TextField) -> Result<Cond, FilterError> {
        let name = field.column();
        let t = self.next(&format!("an operator after {name}"))?;
        let (column, tok) = (t.column, t.tok.clone());
        let negate = match tok {
            Tok::Op("=") | Tok::Op("!=") => {
                let (value, at) = self.value(&format!("a value after {name}"))?;
                let v = field.canonical(&value).map_err(|message| FilterError { column: at, message })?;
                return Ok(Cond::OneOf { field, negate: tok == Tok::Op("!="), values: vec![v] });
            }
            Tok::Op("~") if field == TextField::Name => {
                return Ok(Cond::NameContains(self.value("the text a name contains")?.0));
            }
            ref w if keyword(w, "in") => false,
            ref w if keyword(w, "not") => {
                let t = self.next("\"in\" after \"not\"")?;
                if !keyword(&t.tok, "in") {
                    let msg = format!("expected \"in\" after \"not\", found {}", t.describe());
                    return Err(FilterError { column: t.column, message: msg });
                }
                true
            }
            _ => {
                let ops = if field == TextField::Name { "=, != or ~" } else { "=, !=, in or not in" };
                let msg = format!("expected {ops} after {name}, found {}", self.tokens[self.pos - 1].describe());
                return Err(FilterError { column, message: msg });
            }
        };
        let open = self.next("\"(\" after in")?;
        if open.tok != Tok::Op("(") {
            let msg = format!("expected \"(\" after in, found {}", open.describe());
            return Err(FilterError { column: open.column, message: msg });
        }
        let mut values = Vec::new();
        loop {
            let (value, at) = self.value(&format!("a value of {name}"))?;
            values.push(field.canonical(&value).map_err(|message| FilterError { column: at, message })?);
            let t = self.next("\",\" or \")\"")?;
            match t.tok {
                Tok::Op(",") => continue,
                Tok::Op(")") => break,
                _ => {
                    let msg = format!("expected \",\" or \")\", found {}", t.describe());
                    return Err(FilterError { column: t.column, message: msg });
                }
            }
        }
        Ok(Cond::OneOf { field, negate, values })
    }
}

/// The key of `label.KEY` (or `labels.KEY`).
fn label_key(tok: &Tok) -> Option<String> {
    let Tok::Word(w) = tok else { return None };
    w.strip_prefix("label.").or_else(|| w.strip_prefix("labels.")).filter(|k| !k.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn ok(text: &str) -> Vec<Cond> {
        parse(text, NOW).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> FilterError {
        parse(text, NOW).expect_err(text)
    }

    #[test]
    fn numbers_times_and_and() {
        assert_eq!(
            ok("test_accuracy >= 0.9 and depth<=8, width = 64"),
            vec![
                Cond::Num { field: NumField::TestAccuracy, op: Cmp::Ge, value: NumValue::Real(0.9) },
                Cond::Num { field: NumField::Depth, op: Cmp::Le, value: NumValue::Int(8) },
                Cond::Num { field: NumField::Width, op: Cmp::Eq, value: NumValue::Int(64) },
            ]
        );
        assert_eq!(
            ok("finished > now-2d AND created < 2026-11-01"),
            vec![
                Cond::Num { field: NumField::Finished, op: Cmp::Gt, value: NumValue::Int(NOW - 2 * 86_400_000) },
                Cond::Num { field: NumField::Created, op: Cmp::Lt, value: NumValue::Int(1_793_491_200_000) },
            ]
        );
        assert_eq!(ok("  "), vec![]);
    }

    #[test]
    fn enumerated_fields_take_canonical_values() {
        assert_eq!(
            ok("state in (Succeeded, failed) and verdict != healthy and activation = relu"),
            vec![
                Cond::OneOf {
                    field: TextField::State,
                    negate: false,
                    values: vec!["succeeded".into(), "failed".into()]
                },
                Cond::OneOf { field: TextField::Verdict, negate: true, values: vec!["healthy".into()] },
                Cond::OneOf { field: TextField::Activation, negate: false, values: vec![Activation::Ramp.to_string()] },
            ]
        );
        assert_eq!(
            ok("state not in (queued)"),
            vec![Cond::OneOf { field: TextField::State, negate: true, values: vec!["queued".into()] }]
        );
    }

    #[test]
    fn labels_and_names() {
        assert_eq!(
            ok("label.team = 'vision lab' and label.keep and !label.tmp and label.x != \"a\\\"b\" and label.y exists"),
            vec![
                Cond::Label { key: "team".into(), test: LabelTest::Is("vision lab".into()) },
                Cond::Label { key: "keep".into(), test: LabelTest::Exists },
                Cond::Label { key: "tmp".into(), test: LabelTest::Missing },
                Cond::Label { key: "x".into(), test: LabelTest::IsNot("a\"b".into()) },
                Cond::Label { key: "y".into(), test: LabelTest::Exists },
            ]
        );
        assert_eq!(
            ok("name ~ deep and name != 'a b'"),
            vec![
                Cond::NameContains("deep".into()),
                Cond::OneOf { field: TextField::Name, negate: true, values: vec!["a b".into()] },
            ]
        );
    }

    #[test]
    fn errors_point_at_the_offending_token() {
        let e = err("depth > 2 and acc > 0.9");
        assert_eq!(e.column, 15);
        assert!(e.message.contains("unknown field \"acc\"") && e.message.contains("test_accuracy"), "{e}");
        let e = err("depth > two");
        assert_eq!((e.column, e.message.as_str()), (9, "depth takes a whole number, not \"two\""));
        let e = err("test_accuracy >");
        assert_eq!(e.column, 16);
        assert!(e.message.contains("found the end"), "{e}");
        let e = err("depth > 2 depth < 9");
        assert_eq!(e.column, 11);
        assert!(e.message.contains("expected \"and\""), "{e}");
        let e = err("state = sleeping");
        assert_eq!(e.column, 9);
        assert!(e.message.contains("unknown state"), "{e}");
        let e = err("activation in (tanh, nope)");
        assert_eq!(e.column, 22);
        let e = err("name = 'open");
        assert_eq!(e.column, 8);
        assert!(e.message.contains("never closed"), "{e}");
        let e = err("finished > yesterday");
        assert_eq!(e.column, 12);
        assert!(e.message.starts_with("finished: "), "{e}");
        let e = err("depth ~ 3");
        assert_eq!(e.column, 7);
        let e = err("!depth");
        assert_eq!(e.column, 2);
        let e = err("label. = x");
        assert_eq!(e.column, 1);
        let e = err("test_accuracy > nan");
        assert_eq!(e.column, 17);
    }

    #[test]
    fn sort_keys_parse_by_name() {
        assert_eq!("Test_Accuracy".parse::<SortKey>(), Ok(SortKey::TestAccuracy));
        assert!("accuracy".parse::<SortKey>().unwrap_err().contains("test_accuracy"));
    }
}
