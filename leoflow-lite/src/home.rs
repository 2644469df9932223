//! The Leoflow home (`~/.leoflow`, or `$LEOFLOW_HOME`) and its `config.yaml`: the admin's
//! password hash and the per-install secrets `leoflow setup` writes and `leoflow lite`
//! reads. Secrets never leave this file except into the running process.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the home or its configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot find the Leoflow home: neither LEOFLOW_HOME nor HOME is set; set LEOFLOW_HOME to a directory")]
    NoHome,
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid Leoflow configuration: {message}; fix it, or delete it and run `leoflow setup` again", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// The Leoflow home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `$LEOFLOW_HOME`, else `~/.leoflow`. Made absolute; not created.
    pub fn resolve() -> Result<Home, Error> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let root = match (var("LEOFLOW_HOME"), var("HOME")) {
            (Some(home), _) => PathBuf::from(home),
            (None, Some(home)) => PathBuf::from(home).join(".leoflow"),
            (None, None) => return Err(Error::NoHome),
        };
        let root = std::path::absolute(&root).map_err(|source| Error::Io {
            action: "resolve",
            path: root.clone(),
            source,
        })?;
        Ok(Home { root })
    }

    /// A home at `root` (tests).
    #[cfg(test)]
    pub(crate) fn at(root: PathBuf) -> Home {
        Home { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.yaml` (mode 0600).
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.yaml")
    }

    /// The managed Postgres cluster.
    pub fn postgres_dir(&self) -> PathBuf {
        self.root.join("postgres")
    }

    /// The Airflow UI bundle (`leoflow setup` installs it).
    pub fn ui_dir(&self) -> PathBuf {
        self.root.join("ui")
    }

    /// The compose file of the Docker Postgres (`--postgres docker`).
    pub fn compose_file(&self) -> PathBuf {
        self.root.join("docker-compose.yaml")
    }

    /// The loopback port of the Docker Postgres, chosen once.
    pub fn docker_port_file(&self) -> PathBuf {
        self.root.join("docker-postgres-port")
    }

    /// Downloads kept for reuse (the Airflow wheel the UI comes from).
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Creates the home if it is missing. Mode 0711: others cannot list it, but the managed
    /// Postgres' unprivileged account (when we run as root) can reach its cluster inside.
    pub fn create(&self) -> Result<(), Error> {
        fs::create_dir_all(&self.root).map_err(|source| Error::Io {
            action: "create",
            path: self.root.clone(),
            source,
        })?;
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o711)).map_err(|source| {
            Error::Io {
                action: "restrict the permissions of",
                path: self.root.clone(),
                source,
            }
        })
    }

    /// The configuration, `None` before `leoflow setup` ran.
    pub fn load(&self) -> Result<Option<Config>, Error> {
        let path = self.config_file();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    action: "read",
                    path,
                    source,
                })
            }
        };
        let config: Config = serde_yaml_ng::from_str(&text).map_err(|e| Error::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        config
            .check()
            .map_err(|message| Error::Invalid { path, message })?;
        Ok(Some(config))
    }

    /// Writes the configuration atomically with mode 0600.
    pub fn save(&self, config: &Config) -> Result<(), Error> {
        let path = self.config_file();
        let tmp = self.root.join("config.yaml.tmp");
        let io = |action| {
            let path = path.clone();
            move |source| Error::Io {
                action,
                path,
                source,
            }
        };
        let text = serde_yaml_ng::to_string(config).map_err(|e| Error::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("write"))?;
        file.write_all(HEADER.as_bytes()).map_err(io("write"))?;
        file.write_all(text.as_bytes()).map_err(io("write"))?;
        file.sync_all().map_err(io("write"))?;
        fs::rename(&tmp, &path).map_err(io("write"))
    }
}

const HEADER: &str = "# Leoflow Lite configuration, written by `leoflow setup`. Holds secrets: keep it private (mode 0600).\n";

/// `config.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The single admin's user name.
    pub admin_user: String,
    /// The admin's password as an argon2 PHC string; never the password itself.
    pub admin_password_hash: String,
    /// Signs the API's session tokens and the agents' tokens: 32 random bytes, hex.
    pub jwt_secret: String,
    /// Encrypts connection secrets in the datastore: 32 random bytes, hex.
    pub secret_key: String,
    /// `leoflow lite`'s default port.
    pub port: u16,
}

impl Config {
    fn check(&self) -> Result<(), String> {
        for (name, value) in [
            ("jwt_secret", &self.jwt_secret),
            ("secret_key", &self.secret_key),
        ] {
            if decode32(value).is_none() {
                return Err(format!(
                    "{name} must be 64 hexadecimal characters (32 bytes)"
                ));
            }
        }
        if !self.admin_password_hash.starts_with("$argon2") {
            return Err("admin_password_hash is not an argon2 hash".into());
        }
        Ok(())
    }

    pub fn jwt_secret_bytes(&self) -> Vec<u8> {
        decode32(&self.jwt_secret)
            .map(Vec::from)
            .unwrap_or_default()
    }

    pub fn secret_key_bytes(&self) -> [u8; 32] {
        decode32(&self.secret_key).unwrap_or([0; 32])
    }
}

fn decode32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_round_trip_with_private_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home {
            root: tmp.path().join("h"),
        };
        home.create().unwrap();
        assert_eq!(home.load().unwrap(), None);
        let config = Config {
            admin_user: "admin".into(),
            admin_password_hash: "$argon2id$v=19$x".into(),
            jwt_secret: hex::encode([7; 32]),
            secret_key: hex::encode([9; 32]),
            port: 8088,
        };
        home.save(&config).unwrap();
        assert_eq!(home.load().unwrap(), Some(config.clone()));
        assert_eq!(config.jwt_secret_bytes(), vec![7; 32]);
        assert_eq!(config.secret_key_bytes(), [9; 32]);
        let mode = fs::metadata(home.config_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_bad_secret_is_reported_with_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home {
            root: tmp.path().to_path_buf(),
        };
        fs::write(
            home.config_file(),
            "admin_user: a\nadmin_password_hash: $argon2id$x\njwt_secret: abc\nsecret_key: abc\nport: 1\n",
        )
        .unwrap();
        let err = home.load().unwrap_err().to_string();
        assert!(
            err.contains("config.yaml") && err.contains("jwt_secret"),
            "{err}"
        );
    }
}
