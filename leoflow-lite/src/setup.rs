//! `leoflow setup`: creates the Leoflow home and its `config.yaml` with per-install random
//! secrets and the single admin, whose human-friendly password is printed once in a banner
//! (only its argon2 hash is stored), and provisions the runtimes: the Airflow web UI and,
//! when the host has no PostgreSQL 14+ (and no Docker), the pinned PostgreSQL download.
//! Also `leoflow lite reset-password`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::SetupArgs;
use crate::console;
use crate::download::{self, Pinned};
use crate::home::{Config, Home};
use crate::lite::datastore::{self, ServerSource};
use crate::Error;
use crate::{docker, embedded_postgres};

/// The default `leoflow lite` port.
pub const DEFAULT_PORT: u16 = 8088;

/// The words of generated passwords (surfaces.md §3.7).
const WORDS: [&str; 40] = [
    "river", "maple", "cloud", "stone", "tiger", "amber", "delta", "comet", "otter", "mango",
    "pearl", "raven", "birch", "coral", "ember", "fjord", "glade", "heron", "ivory", "larch",
    "lunar", "moss", "nova", "olive", "opal", "quartz", "reed", "sage", "spark", "tidal", "vine",
    "wren", "zephyr", "aspen", "basil", "cedar", "dune", "fern", "grove", "haze",
];

/// What setup did.
#[derive(Debug)]
pub struct Outcome {
    pub config: Config,
    /// The new password when it was generated or set here (print it once).
    pub password: Option<String>,
}

/// `leoflow setup`.
pub fn run(args: &SetupArgs) -> Result<(), Error> {
    let home = Home::resolve()?;
    let interactive = !args.yes && std::io::stdin().is_terminal();
    if let Some(config) = home.load()? {
        install_ui(home.root(), &home.ui_dir(), &home.cache_dir());
        postgres(&home)?;
        println!(
            "Leoflow is already set up in {} (admin {:?}). Forgot the password? Run `leoflow lite reset-password`.",
            home.root().display(),
            config.admin_user
        );
        return Ok(());
    }
    let port = match args.port {
        Some(p) => p,
        None if interactive => ask_port()?,
        None => DEFAULT_PORT,
    };
    let outcome = ensure(&home, port)?;
    println!(
        "{} Leoflow home: {}",
        console::green("✓"),
        home.root().display()
    );
    install_ui(home.root(), &home.ui_dir(), &home.cache_dir());
    postgres(&home)?;
    if let Some(password) = &outcome.password {
        println!("{}", banner(&outcome.config, password));
    }
    println!(
        "{} You're all set! Next: `leoflow lite <project-dir>` (try `leoflow lite examples/hello`).",
        console::green("✓")
    );
    Ok(())
}

/// Makes sure the managed datastore has server binaries: the system's PostgreSQL 14+, the
/// download installed earlier, or — with no Docker daemon to run `postgres:16` instead —
/// the pinned download, now.
fn postgres(home: &Home) -> Result<(), Error> {
    match datastore::server_source(home)? {
        ServerSource::System(b) => println!(
            "{} PostgreSQL {} (system, {})",
            console::green("✓"),
            b.version,
            b.dir.display()
        ),
        ServerSource::Downloaded(bin) => println!(
            "{} PostgreSQL {} (downloaded, {})",
            console::green("✓"),
            embedded_postgres::VERSION,
            bin.display()
        ),
        ServerSource::ToDownload if docker::probe().answers() => println!(
            "  PostgreSQL: none installed, but Docker answers: `leoflow lite` runs {} in Docker",
            docker::POSTGRES_IMAGE
        ),
        ServerSource::ToDownload => {
            embedded_postgres::ensure(home)?;
        }
    }
    Ok(())
}

fn ask_port() -> Result<u16, Error> {
    let stdin = std::io::stdin();
    loop {
        print!("UI port [{DEFAULT_PORT}]: ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::Usage(format!("cannot read the answer: {e}")))?;
        let line = line.trim();
        if line.is_empty() {
            return Ok(DEFAULT_PORT);
        }
        match line.parse::<u16>() {
            Ok(p) if p > 0 => return Ok(p),
            _ => println!("{line:?} is not a port number (1-65535); try again"),
        }
    }
}

/// Installs the Airflow 3.2.1 UI bundle into `ui_dir` unless it is there: from the wheel
/// `LEOFLOW_UI_WHEEL` names, else downloaded once from PyPI (sha256 pinned) unless
/// `LEOFLOW_UI_DOWNLOAD=0`. A failure is a warning: the API works without the UI, and the
/// next `leoflow setup` tries again.
pub fn install_ui(home: &Path, ui_dir: &Path, cache_dir: &Path) {
    if leoflow_http::ui_assets::is_installed(ui_dir) {
        return;
    }
    let result = if let Some(wheel) = std::env::var_os("LEOFLOW_UI_WHEEL") {
        leoflow_http::ui_assets::install_from_wheel(Path::new(&wheel), ui_dir)
            .map_err(|e| e.to_string())
    } else if std::env::var("LEOFLOW_UI_DOWNLOAD").is_ok_and(|v| v == "0") {
        println!(
            "  web UI not installed (LEOFLOW_UI_DOWNLOAD=0); the REST API works without it — run `leoflow setup` to install it"
        );
        return;
    } else {
        fetch_wheel(cache_dir).and_then(|wheel| {
            leoflow_http::ui_assets::install_from_wheel(&wheel, ui_dir).map_err(|e| e.to_string())
        })
    };
    match result {
        Ok(()) => println!(
            "{} Airflow {} web UI installed in {}",
            console::green("✓"),
            leoflow_http::ui_assets::AIRFLOW_VERSION,
            ui_dir.display()
        ),
        Err(e) => eprintln!(
            "{} the web UI could not be installed: {e}. The REST API works without it; run `leoflow setup` again (home {}) to retry, or set LEOFLOW_UI_WHEEL to a downloaded apache_airflow_core-{}-py3-none-any.whl",
            console::yellow("!"),
            home.display(),
            leoflow_http::ui_assets::AIRFLOW_VERSION
        ),
    }
}

/// The pinned apache-airflow-core wheel in `cache_dir`, downloaded once (checked, with a
/// progress bar) if it is not there.
fn fetch_wheel(cache_dir: &Path) -> Result<PathBuf, String> {
    use leoflow_http::ui_assets::{AIRFLOW_VERSION, WHEEL_FILE, WHEEL_SHA256, WHEEL_URL};
    let wheel = cache_dir.join(WHEEL_FILE);
    if wheel.is_file() {
        return Ok(wheel);
    }
    println!("  downloading the Airflow {AIRFLOW_VERSION} web UI (apache-airflow-core wheel from PyPI, once) …");
    let bytes = download::fetch(
        WHEEL_URL,
        &format!("apache-airflow-core {AIRFLOW_VERSION}"),
        200 * 1024 * 1024,
        Pinned::Sha256Hex(WHEEL_SHA256),
        "",
    )
    .map_err(|e| e.to_string())?;
    let partial = wheel.with_extension("part");
    std::fs::create_dir_all(cache_dir)
        .and_then(|()| std::fs::write(&partial, bytes))
        .and_then(|()| std::fs::rename(&partial, &wheel))
        .map_err(|e| format!("cannot write {}: {e}", wheel.display()))?;
    Ok(wheel)
}

/// Creates the home and its configuration unless it exists; non-interactive.
pub fn ensure(home: &Home, port: u16) -> Result<Outcome, Error> {
    if let Some(config) = home.load()? {
        return Ok(Outcome {
            config,
            password: None,
        });
    }
    home.create()?;
    let user = std::env::var("LEOFLOW_ADMIN_USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "admin".into());
    let password = chosen_password()?;
    let config = Config {
        admin_user: user,
        admin_password_hash: hash_password(&password)?,
        jwt_secret: hex::encode(random::<32>()?),
        secret_key: hex::encode(random::<32>()?),
        port,
    };
    home.save(&config)?;
    Ok(Outcome {
        config,
        password: Some(password),
    })
}

/// `leoflow lite reset-password`: a new password, printed once.
pub fn reset_password() -> Result<(), Error> {
    let home = Home::resolve()?;
    let Some(mut config) = home.load()? else {
        return Err(Error::Usage(format!(
            "Leoflow is not set up in {}; run `leoflow setup` first",
            home.root().display()
        )));
    };
    let password = chosen_password()?;
    config.admin_password_hash = hash_password(&password)?;
    home.save(&config)?;
    println!(
        "password reset for {}\nnew password: {password}\n(shown once — save it; a running `leoflow lite` picks it up on its next start)",
        config.admin_user
    );
    Ok(())
}

/// `$LEOFLOW_ADMIN_PASSWORD`, else a generated one.
fn chosen_password() -> Result<String, Error> {
    match std::env::var("LEOFLOW_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(p),
        _ => generate_password(),
    }
}

/// The one-time banner with the admin's login.
pub fn banner(config: &Config, password: &str) -> String {
    let lines = [
        "LEOFLOW LITE ADMIN — SAVE NOW (shown only once)".to_string(),
        format!("user:     {}", config.admin_user),
        format!("password: {password}"),
        format!("open:     http://localhost:{}", config.port),
        "Forgot it? Run: leoflow lite reset-password".to_string(),
        "SECURITY: a short password — use on localhost, a trusted network or a VPN only"
            .to_string(),
    ];
    console::boxed(&lines)
}

/// One word of [`WORDS`] and 2–4 digits (at most 10 characters), from the OS CSPRNG.
pub fn generate_password() -> Result<String, Error> {
    let word = WORDS[uniform(WORDS.len())?];
    let max_digits = (10 - word.len()).min(4);
    let digits = 2 + uniform(max_digits - 1)?;
    let mut out = word.to_string();
    for _ in 0..digits {
        out.push(char::from(b'0' + uniform(10)? as u8));
    }
    Ok(out)
}

/// A uniform integer in `0..n` (rejection sampling, so no modulo bias).
fn uniform(n: usize) -> Result<usize, Error> {
    let n = n as u32;
    let zone = u32::MAX - u32::MAX % n;
    loop {
        let v = u32::from_le_bytes(random::<4>()?);
        if v < zone {
            return Ok((v % n) as usize);
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Usage(format!("the OS random generator failed: {e}")))?;
    Ok(bytes)
}

/// The argon2id PHC string of `password` (what the REST API's login checks).
fn hash_password(password: &str) -> Result<String, Error> {
    leoflow_http::password::hash_password(password)
        .map_err(|e| Error::Usage(format!("{e}; the admin was not created")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_a_word_and_two_to_four_digits() {
        for _ in 0..200 {
            let p = generate_password().unwrap();
            let word: String = p.chars().take_while(char::is_ascii_lowercase).collect();
            let digits = &p[word.len()..];
            assert!(WORDS.contains(&word.as_str()), "{p}");
            assert!((2..=4).contains(&digits.len()), "{p}");
            assert!(digits.chars().all(|c| c.is_ascii_digit()), "{p}");
            assert!(p.len() <= 10, "{p}");
        }
    }

    #[test]
    fn only_the_hash_is_kept_and_it_verifies() {
        let a = hash_password("otter4821").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert!(!a.contains("otter4821"));
        assert!(leoflow_http::password::verify_password("otter4821", &a));
    }
}
