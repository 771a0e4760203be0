//! `rampart-connect`: set up from the service desk's profile, log in to a Rampart gateway, and
//! reach resources through local port forwards or a SOCKS5 proxy; `doctor` says what is wrong.

mod rehearse;

use clap::{Parser, Subcommand};
use rampart_client::doctor::{CaSource, diagnose};
use rampart_client::error::exit;
use rampart_client::forward::{self, Mapping, Tunnel};
use rampart_client::gateway::connect_any;
use rampart_client::login::{Link, TypedCode};
use rampart_client::messages::{Context, explain};
use rampart_client::resume::resume_saved;
use rampart_client::{ClientError, Home, SavedSession, socks, spread};
use rampart_core::profile::Profile;
use rampart_core::protocol::{ResourceInfo, SessionGrant};
use rampart_core::secret::Sensitive;
use rampart_core::text::printable;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Connect to your organisation's internal resources through a Rampart gateway.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Gateway address, HOST:PORT, tried first (then the profile's gateways in your order;
    /// default: the profile's, or the saved session's).
    #[arg(long, global = true, env = "RAMPART_GATEWAY")]
    gateway: Option<String>,
    /// Organisation CA certificate (PEM) the gateway's certificate must chain to, instead of the
    /// profile's (else the saved session's); also RAMPART_CONNECT_CA. RAMPART_CA, the service
    /// desk's `rampart` variable, is not used.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Folder for the profile and the saved session (default: your config folder/rampart-connect).
    #[arg(long, global = true, env = "RAMPART_CONNECT_HOME")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 other failure (and doctor found a problem), 2 usage, \
3 wrong username/password/code or locked token, 4 gateway unreachable or not trusted, 5 not logged in \
or session ended, 6 gateway busy, 7 resource unknown, not allowed or unreachable.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Import the profile from the service desk: a file, the one-line form, or - for standard input.
    Setup {
        /// The profile file, or the line starting with rampart-profile:.
        profile: String,
    },
    /// Log in with your directory password and the code from your authenticator app.
    Login {
        /// Your username (default: from the profile, else asked).
        #[arg(long, short)]
        user: Option<String>,
        /// The current code (asked for if omitted).
        #[arg(long)]
        otp: Option<String>,
        /// Read the password from standard input (else RAMPART_PASSWORD, else a hidden prompt).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Enrol your authenticator app with your directory password and the registration code
    /// from the service desk (a letter, a call or an e-mail); needs the profile set up first.
    Enrol {
        /// Your username (default: from the profile, else asked).
        #[arg(long, short)]
        user: Option<String>,
        /// The enrolment service, https://HOST:PORT (default: the profile's).
        #[arg(long, value_name = "URL")]
        provisioner: Option<String>,
        /// Read the password from standard input (else RAMPART_PASSWORD, else a hidden prompt).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Who is logged in, until when, and the resources you may reach.
    Status,
    /// Carry local TCP ports to resources: LOCAL_ADDR=RESOURCE (e.g. 127.0.0.1:3389=desktop);
    /// without mappings, the profile's.
    Forward {
        /// Mappings.
        #[arg(value_name = "LOCAL_ADDR=RESOURCE")]
        mappings: Vec<Mapping>,
    },
    /// A SOCKS5 proxy on this computer: programs reach resources by name through it.
    Socks {
        /// Where to listen (loopback only).
        #[arg(default_value = "127.0.0.1:1080")]
        listen: SocketAddr,
    },
    /// Check name resolution, UDP reachability, certificate trust and your clock, with fixes.
    Doctor {
        /// Instead, rehearse: with your session, open each of your resources through the
        /// gateway and report the outcome to the service desk (exit 0 only if all opened).
        #[arg(long)]
        rehearse: bool,
    },
    /// End the session on the gateway and forget it here.
    Logout {
        /// Forget the session here even if no gateway can be told (it then lasts until it
        /// expires).
        #[arg(long)]
        forget: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    rampart_core::logging::init(rampart_core::logging::Format::Text, "warn");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err((e, context)) => {
            eprintln!("{}", explain(&e, context));
            ExitCode::from(e.exit_code())
        }
    }
}

type Failure<'a> = (ClientError, Context<'a>);

fn plain(e: ClientError) -> Failure<'static> {
    (e, Context::default())
}

async fn run(cli: Cli) -> Result<u8, Failure<'static>> {
    let home = Home::resolve(cli.home.clone()).map_err(plain)?;
    match cli.command {
        Command::Setup { ref profile } => setup(&home, profile).map_err(plain)?,
        Command::Login {
            ref user,
            ref otp,
            password_stdin,
        } => login(&cli, &home, user.clone(), otp.clone(), password_stdin).await?,
        Command::Enrol {
            ref user,
            ref provisioner,
            password_stdin,
        } => return enrol(&cli, &home, user.clone(), provisioner.as_deref(), password_stdin).await,
        Command::Status => return status(&home).await.map_err(plain),
        Command::Forward { ref mappings } => {
            let mappings = if mappings.is_empty() {
                profile_forwards(&home).map_err(plain)?
            } else {
                mappings.clone()
            };
            let saved = home
                .load_session()
                .map_err(plain)?
                .ok_or(ClientError::NotLoggedIn)
                .map_err(plain)?;
            // The gateway's current list (the resume at start), before anything listens.
            let tunnel = Tunnel::start(home.clone(), saved).await.map_err(plain)?;
            if let Err(refusal) = forward::check_names(&mappings, &tunnel.resources()) {
                eprintln!("{refusal}");
                return Ok(exit::RESOURCE);
            }
            let listeners = forward::bind(&mappings).await.map_err(plain)?;
            let mut tasks = tokio::task::JoinSet::new();
            for (listener, resource) in listeners {
                let local = listener
                    .local_addr()
                    .map_err(|e| plain(ClientError::Local(e.to_string())))?;
                println!("forwarding {local} -> {resource}");
                tasks.spawn(forward::serve(tunnel.clone(), listener, resource));
            }
            let _ = std::io::stdout().flush();
            let ended = tokio::select! {
                ended = tunnel.ended() => Some(ended),
                _ = tokio::signal::ctrl_c() => None,
            };
            tasks.abort_all();
            if let Some(ended) = ended {
                return Ok(session_over(&ended));
            }
        }
        Command::Socks { listen } => {
            let saved = home
                .load_session()
                .map_err(plain)?
                .ok_or(ClientError::NotLoggedIn)
                .map_err(plain)?;
            let listener = socks::bind(listen).await.map_err(plain)?;
            let tunnel = Tunnel::start(home.clone(), saved).await.map_err(plain)?;
            let local = listener
                .local_addr()
                .map_err(|e| plain(ClientError::Local(e.to_string())))?;
            println!("SOCKS5 proxy on {local}; for example: curl --socks5-hostname {local} http://RESOURCE/");
            let _ = std::io::stdout().flush();
            tokio::select! {
                () = socks::serve(tunnel.clone(), listener) => {}
                ended = tunnel.ended() => return Ok(session_over(&ended)),
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Command::Doctor { rehearse: true } => {
            let ca = rehearsal_ca(&cli).map_err(plain)?;
            return rehearse::rehearse(&home, ca).await.map_err(plain);
        }
        Command::Doctor { rehearse: false } => {
            let known = connection(&cli, &home).map_err(plain)?;
            let saved = home.load_session().ok().flatten();
            let gateways = match &saved {
                Some(s) if cli.gateway.is_none() => {
                    println!("Your session is on the gateway at {}.", s.gateway);
                    spread::starting_with(Some(&s.gateway), &s.user, &known.all())
                }
                _ => known.order(home.load_profile().ok().flatten().and_then(|p| p.user).as_deref()),
            };
            if std::env::var_os(IGNORED_CA_VARIABLE).is_some_and(|v| !v.is_empty()) {
                println!(
                    "[note] {IGNORED_CA_VARIABLE} is set but rampart-connect does not use it; {CA_VARIABLE} or --ca \
                     override the profile's CA"
                );
            }
            let checks = diagnose(&gateways, &known.ca_pem, &known.ca_source, unix_now).await;
            for check in &checks {
                match &check.fix {
                    None => println!("[ ok ] {}", check.finding),
                    Some(fix) => println!("[FAIL] {}\n       fix: {fix}", check.finding),
                }
            }
            if checks.iter().all(|c| c.passed()) {
                println!("Everything needed to connect works.");
            } else {
                return Ok(exit::FAILURE);
            }
        }
        Command::Logout { forget } => logout(&home, forget).await.map_err(plain)?,
    }
    Ok(exit::OK)
}

/// The session ended while forwarding: listeners stop, and the person reads one line saying so,
/// why as far as the gateway said, and to log in again. Returns the exit code.
fn session_over(ended: &rampart_client::tunnel::Ended) -> u8 {
    eprintln!("{}", ended.explain());
    exit::SESSION
}

/// The gateways a command may use and the organisation CA.
struct Known {
    /// Named on the command line: tried first.
    explicit: Option<String>,
    /// The profile's (else the saved session's), tried in the person's order.
    listed: Vec<String>,
    ca_pem: String,
    /// Where `ca_pem` came from.
    ca_source: CaSource,
}

/// The client's own variable naming a CA file that overrides the profile's.
const CA_VARIABLE: &str = "RAMPART_CONNECT_CA";
/// The service desk CLI's CA variable: a desk agent's shell may export it, and the client must
/// not let it replace the profile's CA unnoticed.
const IGNORED_CA_VARIABLE: &str = "RAMPART_CA";

impl Known {
    /// Every gateway in the order `user` tries them: the one on the command line, then the
    /// others by the person's stable choice ([`spread`]), or the profile's order if no
    /// username is known.
    fn order(&self, user: Option<&str>) -> Vec<String> {
        match user {
            Some(user) => spread::starting_with(self.explicit.as_deref(), user, &self.listed),
            None => self.all(),
        }
    }

    /// Every gateway, the command line's first, each once.
    fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = self.explicit.iter().cloned().collect();
        for gateway in &self.listed {
            if !all.contains(gateway) {
                all.push(gateway.clone());
            }
        }
        all
    }
}

/// Gateways to try and the CA: the command line's gateway first, then the profile's, else the
/// saved session's; the CA from the command line, else `RAMPART_CONNECT_CA`, else the profile,
/// else the saved session.
fn connection(cli: &Cli, home: &Home) -> Result<Known, ClientError> {
    let profile = home.load_profile()?;
    let saved = home.load_session().ok().flatten();
    let listed = match (&profile, &saved) {
        (Some(p), _) => p.gateways.clone(),
        (None, Some(s)) if cli.gateway.is_none() => {
            std::iter::once(s.gateway.clone()).chain(s.gateways.clone()).collect()
        }
        _ => Vec::new(),
    };
    if cli.gateway.is_none() && listed.is_empty() {
        return Err(ClientError::Local(
            "no gateway known: run `rampart-connect setup` with the profile from the service desk (or pass --gateway and --ca)".into(),
        ));
    }
    let chosen = match &cli.ca {
        Some(path) => Some((path.clone(), CaSource::CommandLine(path.clone()))),
        None => std::env::var_os(CA_VARIABLE).filter(|v| !v.is_empty()).map(|v| {
            let path = PathBuf::from(v);
            (path.clone(), CaSource::Environment(path))
        }),
    };
    let (ca_pem, ca_source) = match (chosen, profile, saved) {
        (Some((path, source)), _, _) => {
            let pem = std::fs::read_to_string(&path).map_err(|e| {
                ClientError::Local(format!("cannot read the CA file given by {}: {e}", source.describe()))
            })?;
            (pem, source)
        }
        (_, Some(p), _) => (p.ca_pem, CaSource::Profile(home.profile_path())),
        (_, None, Some(s)) => (s.ca_pem, CaSource::SavedSession),
        (_, None, None) => {
            return Err(ClientError::Local(
                "no organisation CA known: run `rampart-connect setup` with the profile from the service desk (or pass --ca)".into(),
            ));
        }
    };
    Ok(Known {
        explicit: cli.gateway.clone(),
        listed,
        ca_pem,
        ca_source,
    })
}

/// The CA a rehearsal's report trusts instead of the profile's: `--ca`, else
/// `RAMPART_CONNECT_CA`; `None` for the profile's.
fn rehearsal_ca(cli: &Cli) -> Result<Option<String>, ClientError> {
    let path = match &cli.ca {
        Some(path) => Some(path.clone()),
        None => std::env::var_os(CA_VARIABLE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    };
    path.map(|path| {
        std::fs::read_to_string(&path)
            .map_err(|e| ClientError::Local(format!("cannot read the CA file {}: {e}", path.display())))
    })
    .transpose()
}

/// Reads a profile, stopping one byte past the size limit so `setup /dev/zero` cannot fill
/// memory; [`Profile::parse`] then names the limit.
fn read_limited(source: impl Read, name: &str) -> Result<String, ClientError> {
    let limit = u64::try_from(rampart_core::profile::MAX_PROFILE_BYTES).unwrap_or(u64::MAX);
    let mut text = String::new();
    source
        .take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(|e| ClientError::Local(format!("cannot read the profile from {name}: {e}")))?;
    Ok(text)
}

fn setup(home: &Home, source: &str) -> Result<(), ClientError> {
    let text = if source == "-" {
        read_limited(std::io::stdin(), "standard input")?
    } else if source.trim_start().starts_with(rampart_core::profile::LINE_PREFIX)
        || source.trim_start().starts_with('{')
    {
        source.to_owned()
    } else {
        let file = std::fs::File::open(source)
            .map_err(|e| ClientError::Local(format!("cannot read the profile file {source}: {e}")))?;
        read_limited(file, source)?
    };
    let profile = Profile::parse(&text).map_err(|e| ClientError::Local(e.to_string()))?;
    home.save_profile(&profile)?;
    let org = if profile.organisation.is_empty() {
        "your organisation".to_owned()
    } else {
        printable(&profile.organisation)
    };
    println!("Set up for {org}. Gateways: {}.", profile.gateways.join(", "));
    if let Some(user) = &profile.user {
        println!("Username: {}.", printable(user));
    }
    if profile.enrol_url.is_some() {
        println!(
            "Next: rampart-connect login — or first, with a registration code from the service desk, \
             rampart-connect enrol"
        );
    } else {
        println!("Next: rampart-connect login");
    }
    Ok(())
}

async fn login(
    cli: &Cli,
    home: &Home,
    user: Option<String>,
    otp: Option<String>,
    password_stdin: bool,
) -> Result<(), Failure<'static>> {
    let known = connection(cli, home).map_err(plain)?;
    let profile = home.load_profile().map_err(plain)?;
    let user = match user.or_else(|| profile.as_ref().and_then(|p| p.user.clone())) {
        Some(user) => user,
        None => prompt("Username: ").map_err(plain)?,
    };
    // A gateway that answers and proves it is the organisation's before anything is asked: on
    // a bad network no code is typed, and spent, for nothing.
    let mut link = Link::open(known.order(Some(&user)), known.ca_pem.clone())
        .await
        .map_err(plain)?;
    let password = read_password(password_stdin).map_err(plain)?;
    let (otp, ask_code) = match otp {
        Some(code) => (Sensitive::new(code), None),
        None => (Sensitive::new(ask_code().map_err(plain)?), Some(ask_code as fn() -> _)),
    };
    let code = TypedCode::new(otp, link.gateway_now());
    let grant = link.login(&user, &password, code, ask_code).await;
    link.close().await;
    // The clocks are named once, with a refused code, where they may matter.
    let context = Context {
        clock_offset: Some(link.clock_offset()),
        first_login: !home.logged_in_before(),
        ..Context::default()
    };
    let grant = grant.map_err(|e| (e, context))?;
    let gateway = link.gateway().to_owned();
    let credential = link
        .client()
        .credential()
        .ok_or_else(|| plain(ClientError::Protocol("no session ticket in the answer".into())))?;
    let _lock = home.lock_session().await.map_err(plain)?;
    home.save_session(&SavedSession {
        gateway: gateway.clone(),
        gateways: known.all(),
        ca_pem: known.ca_pem.clone(),
        user: grant.user.clone(),
        session_id: grant.session_id.clone(),
        ticket: credential.ticket,
        key: Some(credential.key),
        expires_at: grant.expires_at,
        resources: grant.resources.clone(),
    })
    .map_err(plain)?;
    let _ = home.mark_logged_in();
    println!(
        "Logged in as {} until {} (through {gateway}).",
        printable(&grant.user),
        local_time(grant.expires_at)
    );
    print_resources(&grant.resources);
    Ok(())
}

/// The saved session's gateway, then the others in the person's order.
fn session_gateways(saved: &SavedSession) -> Vec<String> {
    spread::starting_with(Some(&saved.gateway), &saved.user, &saved.gateways)
}

async fn status(home: &Home) -> Result<u8, ClientError> {
    let saved = home.load_session()?.ok_or(ClientError::NotLoggedIn)?;
    let gateways = session_gateways(&saved);
    let mut credential = saved.credential()?;
    let checked: Result<(String, SessionGrant), ClientError> = async {
        let (gateway, client) = connect_any(&gateways, &saved.ca_pem).await?;
        let grant = resume_saved(home, &client, &gateway, &mut credential).await;
        client.close().await;
        Ok((gateway, grant?))
    }
    .await;
    match checked {
        Ok((gateway, grant)) => {
            println!(
                "Logged in as {} until {} (through {gateway}).",
                printable(&grant.user),
                local_time(grant.expires_at)
            );
            print_resources(&grant.resources);
            Ok(exit::OK)
        }
        Err(e) if e.is_connection_failure() => {
            println!(
                "Logged in as {} until {} (not checked: {e}).",
                printable(&saved.user),
                local_time(saved.expires_at)
            );
            // One heading: what the gateway granted at login, since it could not be asked now.
            if saved.resources.is_empty() {
                println!("At login no resources were open to you.");
            } else {
                println!("At login you could reach:");
                print_resource_lines(&saved.resources);
            }
            Ok(exit::UNREACHABLE)
        }
        Err(e) => Err(e),
    }
}

async fn logout(home: &Home, forget: bool) -> Result<(), ClientError> {
    let saved = home.load_session()?.ok_or(ClientError::NotLoggedIn)?;
    let gateways = session_gateways(&saved);
    let result = async {
        let mut credential = saved.credential()?;
        let (gateway, client) = connect_any(&gateways, &saved.ca_pem).await?;
        let ended = async {
            resume_saved(home, &client, &gateway, &mut credential).await?;
            client.logout().await
        }
        .await;
        client.close().await;
        ended
    }
    .await;
    match result {
        Ok(()) => {
            home.clear_session()?;
            println!("Logged out.");
            Ok(())
        }
        // The gateway says the session is already over: nothing is left to end.
        Err(ClientError::Refused { code, .. }) if rampart_client::gateway::session_ended(code) => {
            home.clear_session()?;
            println!("Logged out (the session had already ended).");
            Ok(())
        }
        Err(e) if forget => {
            home.clear_session()?;
            println!(
                "Forgotten on this computer, but the gateway could not be told ({e}): the session lasts until {}.",
                local_time(saved.expires_at)
            );
            Ok(())
        }
        // Keep the ticket: it is the only way to end the session before it expires.
        Err(e) => Err(e),
    }
}

fn profile_forwards(home: &Home) -> Result<Vec<Mapping>, ClientError> {
    let forwards = home.load_profile()?.map(|p| p.forwards).unwrap_or_default();
    if forwards.is_empty() {
        return Err(ClientError::Local(
            "name what to forward, e.g. 127.0.0.1:3389=desktop (your profile names none)".into(),
        ));
    }
    forwards.iter().map(|f| f.parse().map_err(ClientError::Local)).collect()
}

fn print_resources(resources: &[ResourceInfo]) {
    if resources.is_empty() {
        println!("No resources are open to you yet; ask the service desk.");
        return;
    }
    println!("You can reach:");
    print_resource_lines(resources);
}

/// One line per resource: name, description and, when limited, its hours.
fn print_resource_lines(resources: &[ResourceInfo]) {
    for r in resources {
        let hours = r
            .hours
            .as_deref()
            .map(|h| format!(" (open {})", printable(h)))
            .unwrap_or_default();
        println!("  {:<20} {}{hours}", printable(&r.name), printable(&r.description));
    }
}

fn local_time(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_else(|_| unix.to_string())
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `enrol`: the prompts, then [`rampart_client::enrol::enrol`]; its refusals are said here
/// with their own exit codes.
async fn enrol(
    cli: &Cli,
    home: &Home,
    user: Option<String>,
    provisioner: Option<&str>,
    password_stdin: bool,
) -> Result<u8, Failure<'static>> {
    use rampart_client::enrol::{self, Credentials, EnrolError};
    let profile = home.load_profile().map_err(plain)?.ok_or_else(|| {
        plain(ClientError::Local(
            "set up your profile first: rampart-connect setup LINE (the line from your enrolment letter)".into(),
        ))
    })?;
    let said = |e: EnrolError| {
        eprintln!("{e}");
        e.exit_code()
    };
    let url = match enrol::enrol_url(provisioner, Some(&profile)) {
        Ok(url) => url,
        Err(e) => return Ok(said(e)),
    };
    let ca_pem = match &cli.ca {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            plain(ClientError::Local(format!(
                "cannot read the CA file given by --ca {}: {e}",
                path.display()
            )))
        })?,
        None => profile.ca_pem.clone(),
    };
    let username = match user.or_else(|| profile.user.clone()) {
        Some(user) => user,
        None => prompt("Username: ").map_err(plain)?,
    };
    let password = read_password(password_stdin).map_err(plain)?;
    // Hidden like the password: it is a credential, if only for one use.
    let registration_code = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Registration code (from your letter): ")
            .map(Sensitive::new)
            .map_err(|e| plain(ClientError::Local(format!("cannot read the registration code: {e}"))))?
    } else {
        Sensitive::new(prompt("Registration code (from your letter): ").map_err(plain)?)
    };
    let credentials = Credentials {
        username,
        password,
        registration_code,
    };
    let ask = |question: &str| prompt(question).map_err(|e| EnrolError::Local(e.to_string()));
    let qr_file = home.dir().join("enrolment-qr.svg");
    match enrol::enrol(&url, &ca_pem, credentials, &qr_file, &ask).await {
        Ok(username) => {
            println!(
                "Your authenticator is enrolled and active for {}. Next: rampart-connect login",
                printable(&username)
            );
            Ok(exit::OK)
        }
        Err(e) => Ok(said(e)),
    }
}

fn read_password(from_stdin: bool) -> Result<Sensitive<String>, ClientError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| ClientError::Local(format!("cannot read the password from standard input: {e}")))?;
        let trimmed = line.trim_end_matches(['\n', '\r']).to_owned();
        zeroize::Zeroize::zeroize(&mut line);
        return Ok(Sensitive::new(trimmed));
    }
    if let Ok(password) = std::env::var("RAMPART_PASSWORD") {
        return Ok(Sensitive::new(password));
    }
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Local(
            "no password: use --password-stdin or RAMPART_PASSWORD, or run in a terminal".into(),
        ));
    }
    rpassword::prompt_password("Password: ")
        .map(Sensitive::new)
        .map_err(|e| ClientError::Local(format!("cannot read the password: {e}")))
}

/// Asks for the current code at the terminal.
fn ask_code() -> Result<String, ClientError> {
    prompt("Code from your authenticator app: ")
}

fn prompt(question: &str) -> Result<String, ClientError> {
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Local(format!(
            "cannot ask {question:?} without a terminal: pass it as an option"
        )));
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| ClientError::Local(e.to_string()))?;
    Ok(line.trim().to_owned())
}
