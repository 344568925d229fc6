//! Placeholders for statements whose number of values varies (multi-row
//! inserts, `IN` lists). Only placeholders are formatted into SQL text;
//! every value is bound.
//!
//! SQLite gets anonymous `?`: sqlx's SQLite driver asks SQLite for each
//! parameter's name while binding, and SQLite finds a numbered name (`$7`)
//! by a scan of all of them, so a 3,200-value insert spent most of its time
//! there (quadratic in the values; measured at 46% of the server's CPU with
//! the decision log on). PostgreSQL needs `$1, $2, ...`.

use crate::Backend;

/// Appends `(.., ..), (.., ..)`: `rows` rows of `cols` values each, numbered
/// from 1.
pub(crate) fn push_rows(sql: &mut String, backend: Backend, rows: usize, cols: usize) {
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        push_list(sql, backend, row * cols + 1, cols);
        sql.push(')');
    }
}

/// Appends `.., .., ..`: `n` values numbered from `first`. On SQLite the
/// values before them in the statement must be anonymous too, so
/// positions follow the order of the text.
pub(crate) fn push_list(sql: &mut String, backend: Backend, first: usize, n: usize) {
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        match backend {
            Backend::Sqlite => sql.push('?'),
            Backend::Postgres => {
                sql.push('$');
                sql.push_str(&(first + i).to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        let mut pg = String::new();
        push_rows(&mut pg, Backend::Postgres, 2, 3);
        assert_eq!(pg, "($1, $2, $3), ($4, $5, $6)");
        let mut lite = String::new();
        push_rows(&mut lite, Backend::Sqlite, 2, 3);
        assert_eq!(lite, "(?, ?, ?), (?, ?, ?)");
        let mut list = String::from("id IN (");
        push_list(&mut list, Backend::Postgres, 3, 2);
        assert_eq!(list, "id IN ($3, $4");
    }
}
