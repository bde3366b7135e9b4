//! `ListJobs` as SQL for both backends: the filter's conditions, the sort and its keyset page
//! tokens. Placeholders and the substring test are the dialect's, passed in.

use sqlx::query::Query;
use sqlx::{AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Row, Type};

use super::shared::{page_size, page_token};
use crate::runner::filter::{Cond, LabelTest, NumValue, SortKey};
use crate::runner::{JobFilter, Order, PageRequest, StoreError};

/// A value bound into a dynamically built query.
pub enum Arg {
    Int(i64),
    Real(f64),
    Text(String),
}

/// `ListJobs` as SQL: the WHERE clause (empty or starting with WHERE), its arguments, the
/// ORDER BY list, the column sorted on (to select as `sort_value` for the next page's token)
/// and the LIMIT; `param(n)` writes the n-th placeholder (1-based) of the dialect,
/// `contains(column, placeholder)` a case-sensitive substring test.
pub struct ListSql {
    pub where_: String,
    pub args: Vec<Arg>,
    pub order_by: String,
    pub sort_column: Option<&'static str>,
    pub limit: u64,
    pub size: u32,
}

impl ListSql {
    /// The SELECT of the page; `columns` are the job columns the backend reads.
    pub fn select(&self, columns: &str) -> String {
        let sort = self.sort_column.map(|c| format!(", {c} AS sort_value")).unwrap_or_default();
        format!("SELECT {columns}{sort} FROM jobs {} ORDER BY {} LIMIT {}", self.where_, self.order_by, self.limit)
    }

    /// The page's query with its arguments bound, for either backend.
    pub fn query<'a, DB: Database>(&self, columns: &str) -> Query<'a, DB, DB::Arguments>
    where
        for<'t> i64: Encode<'t, DB> + Type<DB>,
        for<'t> f64: Encode<'t, DB> + Type<DB>,
        for<'t> String: Encode<'t, DB> + Type<DB>,
    {
        let mut query = sqlx::query(AssertSqlSafe(self.select(columns)));
        for a in &self.args {
            query = match a {
                Arg::Int(i) => query.bind(*i),
                Arg::Real(x) => query.bind(*x),
                Arg::Text(t) => query.bind(t.clone()),
            };
        }
        query
    }
}

pub fn list_sql(
    filter: &JobFilter,
    order: Order,
    page: &PageRequest,
    param: impl Fn(usize) -> String,
    contains: impl Fn(&str, &str) -> String,
) -> Result<ListSql, StoreError> {
    let size = page_size(page);
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let push = |args: &mut Vec<Arg>, a: Arg| {
        args.push(a);
        param(args.len())
    };
    if !filter.states.is_empty() {
        let ps: Vec<String> = filter.states.iter().map(|s| push(&mut args, Arg::Text(s.as_str().into()))).collect();
        conds.push(format!("state IN ({})", ps.join(", ")));
    }
    if let Some(a) = &filter.activation {
        conds.push(format!("activation = {}", push(&mut args, Arg::Text(a.clone()))));
    }
    if let Some(d) = filter.min_depth {
        conds.push(format!("depth >= {}", push(&mut args, Arg::Int(d.into()))));
    }
    if let Some(d) = filter.max_depth {
        conds.push(format!("depth <= {}", push(&mut args, Arg::Int(d.into()))));
    }
    if let Some((key, value)) = &filter.label {
        let test = match value {
            Some(v) => LabelTest::Is(v.clone()),
            None => LabelTest::Exists,
        };
        conds.push(label_sql(key, &test, &mut |a| push(&mut args, a)));
    }
    if let Some(v) = &filter.verdict {
        conds.push(format!("verdict = {}", push(&mut args, Arg::Text(v.as_str().into()))));
    }
    if let Some(s) = &filter.name_contains {
        let p = push(&mut args, Arg::Text(s.clone()));
        conds.push(contains("name", &p));
    }
    if let Some(s) = filter.sweep_id {
        conds.push(format!("sweep_id = {}", push(&mut args, Arg::Int(s))));
    }
    if let Some(t) = filter.finished_before_ms {
        conds.push(format!("finished_ms < {}", push(&mut args, Arg::Int(t))));
    }
    if let Some((key, value)) = &filter.without_label {
        conds.push(label_sql(key, &LabelTest::IsNot(value.clone()), &mut |a| push(&mut args, a)));
    }
    for c in &filter.conditions {
        let sql = match c {
            Cond::Num { field, op, value } => {
                let arg = match *value {
                    NumValue::Int(i) => Arg::Int(i),
                    NumValue::Real(x) => Arg::Real(x),
                };
                format!("{} {} {}", field.column(), op.sql(), push(&mut args, arg))
            }
            Cond::OneOf { field, negate, values } => {
                let ps: Vec<String> = values.iter().map(|v| push(&mut args, Arg::Text(v.clone()))).collect();
                let not = if *negate { "NOT " } else { "" };
                format!("{} {not}IN ({})", field.column(), ps.join(", "))
            }
            Cond::NameContains(s) => {
                let p = push(&mut args, Arg::Text(s.clone()));
                contains("name", &p)
            }
            Cond::Label { key, test } => label_sql(key, test, &mut |a| push(&mut args, a)),
        };
        conds.push(sql);
    }
    let (cmp, dir) = if order.descending { ("<", "DESC") } else { (">", "ASC") };
    let sort_column = order.key.column();
    if let Some(token) = &page.token {
        let (value, after) = sorted_page_token(token, order.key)?;
        // Placeholders are pushed in the order they appear: SQLite's `?` binds by position.
        conds.push(match (sort_column, value) {
            (None, _) => format!("id {cmp} {}", push(&mut args, Arg::Int(after))),
            // Rows without the key come after every row with one, in id order.
            (Some(col), SortValue::Null) => {
                format!("({col} IS NULL AND id {cmp} {})", push(&mut args, Arg::Int(after)))
            }
            (Some(col), v) => {
                let beyond = push(&mut args, v.arg());
                let tied = push(&mut args, v.arg());
                let id = push(&mut args, Arg::Int(after));
                format!("({col} {cmp} {beyond} OR ({col} = {tied} AND id {cmp} {id}) OR {col} IS NULL)")
            }
        });
    }
    let where_ = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    let order_by = match sort_column {
        None => format!("id {dir}"),
        Some(col) => format!("{col} {dir} NULLS LAST, id {dir}"),
    };
    Ok(ListSql { where_, args, order_by, sort_column, limit: size as u64 + 1, size })
}

/// A label condition; `bind` binds an argument and returns its placeholder.
fn label_sql(key: &str, test: &LabelTest, bind: &mut dyn FnMut(Arg) -> String) -> String {
    let k = bind(Arg::Text(key.to_string()));
    let has = |value: Option<&str>, bind: &mut dyn FnMut(Arg) -> String| {
        let v = value.map(|v| format!(" AND l.value = {}", bind(Arg::Text(v.to_string())))).unwrap_or_default();
        format!("EXISTS (SELECT 1 FROM job_labels l WHERE l.job_id = jobs.id AND l.key = {k}{v})")
    };
    match test {
        LabelTest::Is(v) => has(Some(v), bind),
        LabelTest::IsNot(v) => format!("NOT {}", has(Some(v), bind)),
        LabelTest::Exists => has(None, bind),
        LabelTest::Missing => format!("NOT {}", has(None, bind)),
    }
}

/// The value a page ended on, in the column sorted by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SortValue {
    Null,
    Int(i64),
    Real(f64),
}

impl SortValue {
    fn arg(self) -> Arg {
        match self {
            SortValue::Int(i) => Arg::Int(i),
            SortValue::Real(x) => Arg::Real(x),
            SortValue::Null => unreachable!("a NULL key is compared with IS NULL"),
        }
    }

    fn token(self, id: i64) -> String {
        match self {
            SortValue::Null => format!("null:{id}"),
            SortValue::Int(i) => format!("{i}:{id}"),
            // Debug writes the shortest text that reads back as the same bits.
            SortValue::Real(x) => format!("{x:?}:{id}"),
        }
    }
}

/// The `sort_value` a page's row was selected with (see [`ListSql::select`]).
pub fn sort_value<'r, R>(row: &'r R, key: SortKey) -> Result<SortValue, StoreError>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let value = match key.column() {
        None => SortValue::Null,
        Some(_) if key.is_real() => {
            row.try_get::<Option<f64>, _>("sort_value")?.map_or(SortValue::Null, SortValue::Real)
        }
        Some(_) => row.try_get::<Option<i64>, _>("sort_value")?.map_or(SortValue::Null, SortValue::Int),
    };
    Ok(value)
}

/// A page of `rows` (job, sort value) read with one more than `size`: the page, and the next
/// page's token: the decimal id of its last job in creation order, else `value:id`.
pub fn sorted_page_of<T>(
    mut rows: Vec<(T, SortValue)>,
    size: u32,
    key: SortKey,
    id: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<String>) {
    let next = if rows.len() > size as usize {
        rows.truncate(size as usize);
        rows.last().map(|(r, v)| if key.column().is_none() { id(r).to_string() } else { v.token(id(r)) })
    } else {
        None
    };
    (rows.into_iter().map(|(r, _)| r).collect(), next)
}

/// The sort value and id a page token names (see [`sorted_page_of`]).
pub fn sorted_page_token(token: &str, key: SortKey) -> Result<(SortValue, i64), StoreError> {
    let bad = || StoreError::Invalid(format!("bad page token {token:?}"));
    if key.column().is_none() {
        return Ok((SortValue::Null, page_token(token)?));
    }
    let (value, last) = token.rsplit_once(':').ok_or_else(bad)?;
    let value = match value {
        "null" => SortValue::Null,
        v if key.is_real() => SortValue::Real(v.parse::<f64>().ok().filter(|x| !x.is_nan()).ok_or_else(bad)?),
        v => SortValue::Int(v.parse().map_err(|_| bad())?),
    };
    Ok((value, page_token(last).map_err(|_| bad())?))
}
