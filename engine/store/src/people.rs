//! The roster: people (reps, managers, partners) as effective-dated
//! versions. A change from a date closes the version in force on that date
//! and opens a new one, so a run reads each person as of each deal's close
//! date. Managers form the hierarchy that manager plans and statement
//! visibility use.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::{People, Result, StoreError, query_err, timestamp_now};

/// The first day of a version given without `effective.from`: in force
/// since before any deal.
pub const BEGINNING: &str = "1900-01-01";

/// One version of a person, in force from `valid_from` (inclusive) to
/// `valid_to` (exclusive; `None`: still in force).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// What plans read beside the fields above: `quota`, `csat`, ...
    #[serde(default)]
    pub attributes: Map<String, Value>,
    pub valid_from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
}

impl Person {
    /// The person as a plan reads `rep`: the fields, with the attributes
    /// beside them (a named field wins over an attribute of the same name).
    pub fn as_rep(&self) -> Map<String, Value> {
        let mut rep = self.attributes.clone();
        rep.insert("id".into(), Value::String(self.id.clone()));
        rep.insert("name".into(), Value::String(self.name.clone()));
        rep.insert("role".into(), Value::String(self.role.clone()));
        for (k, v) in [
            ("manager", &self.manager),
            ("region", &self.region),
            ("team", &self.team),
        ] {
            if let Some(v) = v {
                rep.insert(k.into(), Value::String(v.clone()));
            }
        }
        rep
    }

    /// In force on `date` (YYYY-MM-DD)?
    pub fn in_force(&self, date: &str) -> bool {
        self.valid_from.as_str() <= date && self.valid_to.as_deref().is_none_or(|to| date < to)
    }
}

/// Checks a date given for a version: YYYY-MM-DD.
pub fn check_date(field: &str, s: &str) -> Result<()> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| StoreError::BadArgument(format!("`{field}` must be a date such as 2026-02-15, not `{s}`")))
}

const PERSON_COLUMNS: &str = "id, valid_from, valid_to, name, role, manager, region, team, attributes";

fn person_row(r: &AnyRow) -> Result<Person> {
    let e = || query_err("reading the roster");
    let attributes: String = r.try_get(8).map_err(e())?;
    Ok(Person {
        id: r.try_get(0).map_err(e())?,
        valid_from: r.try_get(1).map_err(e())?,
        valid_to: r.try_get(2).map_err(e())?,
        name: r.try_get(3).map_err(e())?,
        role: r.try_get(4).map_err(e())?,
        manager: r.try_get(5).map_err(e())?,
        region: r.try_get(6).map_err(e())?,
        team: r.try_get(7).map_err(e())?,
        attributes: serde_json::from_str(&attributes).map_err(|x| StoreError::Query {
            what: "reading the roster",
            source: sqlx::Error::Decode(Box::new(x)),
        })?,
    })
}

impl People {
    /// Stores a version of a person from `p.valid_from`: it replaces a
    /// version starting the same day, ends the version in force that day,
    /// and lasts until the next later version (if any). The stored version.
    pub async fn put_person(&self, p: &Person, by: &str) -> Result<Person> {
        let mut tx = self.begin_write().await?;
        let stored = self.put_person_in(&mut tx, p, by).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// As [`People::put_person`], inside a transaction.
    pub async fn put_person_in(&self, conn: &mut AnyConnection, p: &Person, by: &str) -> Result<Person> {
        check_date("effective.from", &p.valid_from)?;
        let versions = self.person_versions_in(conn, &p.id).await?;
        let next = versions
            .iter()
            .map(|v| v.valid_from.as_str())
            .filter(|from| *from > p.valid_from.as_str())
            .min()
            .map(str::to_string);
        let mut stored = p.clone();
        stored.valid_to = next;
        sqlx::query("DELETE FROM people WHERE id = $1 AND valid_from = $2")
            .bind(&p.id)
            .bind(&p.valid_from)
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing a person"))?;
        // The version in force that day ends that day.
        sqlx::query(
            "UPDATE people SET valid_to = $2 WHERE id = $1 AND valid_from < $2 AND (valid_to IS NULL OR valid_to > $2)",
        )
        .bind(&p.id)
        .bind(&p.valid_from)
        .execute(&mut *conn)
        .await
        .map_err(query_err("storing a person"))?;
        let attributes =
            serde_json::to_string(&stored.attributes).map_err(|e| StoreError::BadArgument(e.to_string()))?;
        sqlx::query("INSERT INTO people (id, valid_from, valid_to, name, role, manager, region, team, attributes, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(&stored.id)
            .bind(&stored.valid_from)
            .bind(stored.valid_to.clone())
            .bind(&stored.name)
            .bind(&stored.role)
            .bind(stored.manager.clone())
            .bind(stored.region.clone())
            .bind(stored.team.clone())
            .bind(attributes)
            .bind(timestamp_now())
            .bind(by)
            .execute(&mut *conn)
            .await
            .map_err(query_err("storing a person"))?;
        // The deals they own are credited with who they were on each
        // deal's close date: their kept credits are marked.
        self.mark_deals_of_owner(conn, &p.id).await?;
        Ok(stored)
    }

    /// Stores every version, in order, in one transaction: all or nothing.
    pub async fn import_people(&self, people: &[Person], by: &str) -> Result<usize> {
        let mut tx = self.begin_write().await?;
        for p in people {
            self.put_person_in(&mut tx, p, by).await?;
        }
        tx.commit().await?;
        Ok(people.len())
    }

    /// The version of person `id` in force on `date` (YYYY-MM-DD), read in
    /// `conn` (a write transaction's own connection).
    pub async fn person_on_in(&self, conn: &mut AnyConnection, id: &str, date: &str) -> Result<Option<Person>> {
        Ok(self
            .person_versions_in(conn, id)
            .await?
            .into_iter()
            .find(|p| p.in_force(date)))
    }

    async fn person_versions_in(&self, conn: &mut AnyConnection, id: &str) -> Result<Vec<Person>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSON_COLUMNS} FROM people WHERE id = $1 ORDER BY valid_from"
        )))
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_err("reading the roster"))?;
        rows.iter().map(person_row).collect()
    }

    /// The roster as of `date` (YYYY-MM-DD), by id; only `role` when given.
    pub async fn people_as_of(&self, date: &str, role: Option<&str>) -> Result<Vec<Person>> {
        check_date("as_of", date)?;
        let mut sql = format!(
            "SELECT {PERSON_COLUMNS} FROM people WHERE valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)"
        );
        if role.is_some() {
            sql.push_str(" AND role = $2");
        }
        sql.push_str(" ORDER BY id");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(date.to_string());
        if let Some(r) = role {
            q = q.bind(r.to_string());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(query_err("reading the roster"))?;
        rows.iter().map(person_row).collect()
    }

    /// Every version of every person whose versions overlap `[from, to]`
    /// (dates, inclusive), by id and start.
    pub async fn people_between(&self, from: &str, to: &str) -> Result<Vec<Person>> {
        self.people_between_with(&self.pool, from, to).await
    }

    /// As [`People::people_between`], read in `conn` (a write transaction's
    /// own connection).
    pub async fn people_between_in(&self, conn: &mut AnyConnection, from: &str, to: &str) -> Result<Vec<Person>> {
        self.people_between_with(&mut *conn, from, to).await
    }

    async fn people_between_with<'e, E>(&self, conn: E, from: &str, to: &str) -> Result<Vec<Person>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSON_COLUMNS} FROM people WHERE valid_from <= $2 AND (valid_to IS NULL OR valid_to > $1) ORDER BY id, valid_from"
        )))
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(conn)
        .await
        .map_err(query_err("reading the roster"))?;
        rows.iter().map(person_row).collect()
    }
}
