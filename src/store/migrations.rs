//! The schema migrations of each backend, embedded in the binary as `sqlx::migrate!` would do,
//! without its proc macro (which builds a second SQLite, for the build host: about a minute of
//! every fresh build). A test checks the lists against the files in `migrations/`.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

fn migration(version: i64, description: &'static str, sql: &'static str) -> Migration {
    Migration::new(
        version,
        Cow::Borrowed(description),
        MigrationType::Simple,
        sqlx::SqlSafeStr::into_sql_str(sql),
        false,
    )
}

pub fn sqlite() -> Migrator {
    Migrator::with_migrations(vec![
        migration(1, "init", include_str!("../../migrations/sqlite/0001_init.sql")),
        migration(2, "sweeps", include_str!("../../migrations/sqlite/0002_sweeps.sql")),
        migration(3, "claims", include_str!("../../migrations/sqlite/0003_claims.sql")),
        migration(4, "deletes", include_str!("../../migrations/sqlite/0004_deletes.sql")),
        migration(5, "results", include_str!("../../migrations/sqlite/0005_results.sql")),
        migration(6, "checkpoints", include_str!("../../migrations/sqlite/0006_checkpoints.sql")),
    ])
}

pub fn postgres() -> Migrator {
    Migrator::with_migrations(vec![
        migration(1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
        migration(2, "precompressed", include_str!("../../migrations/postgres/0002_precompressed.sql")),
        migration(3, "results", include_str!("../../migrations/postgres/0003_results.sql")),
        migration(4, "checkpoints", include_str!("../../migrations/postgres/0004_checkpoints.sql")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `migrations/<backend>/` is in the list, with its version, name and text.
    fn matches_its_folder(backend: &str, migrator: &Migrator) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
        let mut files: Vec<(i64, String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
                let (v, name) = stem.split_once('_').unwrap();
                (v.parse().unwrap(), name.replace('_', " "), std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        let embedded: Vec<(i64, String, String)> =
            migrator.iter().map(|m| (m.version, m.description.to_string(), m.sql.as_str().to_string())).collect();
        assert_eq!(embedded, files, "migrations/{backend} and store::migrations disagree");
    }

    #[test]
    fn migrations_are_embedded_whole() {
        matches_its_folder("sqlite", &sqlite());
        matches_its_folder("postgres", &postgres());
    }
}
