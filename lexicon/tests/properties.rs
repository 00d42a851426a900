//! Property tests: random catalogs classify generated texts to their own command with the
//! expected arguments; arbitrary input never panics; values round-trip through JSON.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lexicon::{Catalog, CatalogError, Classification, CommandSpec, DurationValue, Value};
use proptest::prelude::*;

/// Literal words of generated patterns; never produced as slot values.
const LITERALS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
];
/// Choice alternatives; disjoint from `LITERALS` and from generated values.
const CHOICES: &[&str] = &["red", "green", "blue", "amber", "Violet", "teal"];

/// A small deterministic generator driven by a proptest seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi as i128 - lo as i128 + 1) as u128;
        (lo as i128 + (u128::from(self.next()) % span) as i128) as i64
    }
}

/// Random upper/lower case for ASCII letters.
fn jumble(rng: &mut Rng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if rng.chance(30) {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

#[derive(Clone, Debug)]
enum GenKind {
    Word,
    Name,
    Hostname,
    Ip,
    Cidr,
    Int(Option<i64>, Option<i64>),
    Duration,
    Choice(Vec<String>),
    JobId,
    Text,
}

impl GenKind {
    fn random(rng: &mut Rng) -> GenKind {
        match rng.below(9) {
            0 => GenKind::Word,
            1 => GenKind::Name,
            2 => GenKind::Hostname,
            3 => GenKind::Ip,
            4 => GenKind::Cidr,
            5 => {
                let min = rng.chance(50).then(|| rng.range(-50, 50));
                let max = rng.chance(50).then(|| min.unwrap_or(0) + rng.range(0, 100));
                GenKind::Int(min, max)
            }
            6 => GenKind::Duration,
            7 => {
                // Two to four distinct alternatives.
                let mut pool: Vec<&str> = CHOICES.to_vec();
                let mut alts: Vec<String> = Vec::new();
                for _ in 0..2 + rng.below(3) {
                    let i = rng.below(pool.len() as u64) as usize;
                    alts.push(pool.swap_remove(i).to_string());
                }
                GenKind::Choice(alts)
            }
            _ => GenKind::JobId,
        }
    }

    fn type_text(&self) -> String {
        match self {
            GenKind::Word => "word".into(),
            GenKind::Name => "name".into(),
            GenKind::Hostname => "hostname".into(),
            GenKind::Ip => "ip".into(),
            GenKind::Cidr => "cidr".into(),
            GenKind::Int(None, None) => "int".into(),
            GenKind::Int(lo, hi) => format!(
                "int({}..{})",
                lo.map(|n| n.to_string()).unwrap_or_default(),
                hi.map(|n| n.to_string()).unwrap_or_default()
            ),
            GenKind::Duration => "duration".into(),
            GenKind::Choice(alts) => alts.join("|"),
            GenKind::JobId => "jobid".into(),
            GenKind::Text => "text".into(),
        }
    }

    /// A valid value as typed by a user, and the value the classifier must produce.
    fn value(&self, rng: &mut Rng) -> (String, Value) {
        match self {
            GenKind::Word => {
                let t = format!("Wv{}", rng.below(10_000));
                (t.clone(), Value::Word(t))
            }
            GenKind::Name => {
                let t = format!("nm-{}.x_{}", rng.below(1000), rng.below(10));
                (t.clone(), Value::Name(t))
            }
            GenKind::Hostname => {
                let t = format!("Host{}.example-{}.net", rng.below(1000), rng.below(10));
                (t.clone(), Value::Hostname(t))
            }
            GenKind::Ip => {
                let ip: IpAddr = if rng.chance(50) {
                    Ipv4Addr::from(rng.next() as u32).into()
                } else {
                    Ipv6Addr::from(u128::from(rng.next()) << 64 | u128::from(rng.next())).into()
                };
                let t = ip.to_string();
                let t = if rng.chance(50) { t.to_uppercase() } else { t };
                (t, Value::Ip(ip))
            }
            GenKind::Cidr => {
                let ip = Ipv4Addr::from(rng.next() as u32);
                let prefix = rng.below(33);
                let t = format!("{ip}/{prefix}");
                (t.clone(), Value::Cidr(t))
            }
            GenKind::Int(lo, hi) => {
                let lo = lo.unwrap_or(-1000);
                let hi = hi.unwrap_or(lo.max(0) + 1000);
                let n = rng.range(lo, hi);
                let t = if n >= 0 && rng.chance(20) {
                    format!("+{n}")
                } else {
                    n.to_string()
                };
                (t, Value::Int(n))
            }
            GenKind::Duration => {
                let units: [(&str, u64); 5] = [
                    ("d", 86_400_000),
                    ("h", 3_600_000),
                    ("m", 60_000),
                    ("s", 1_000),
                    ("ms", 1),
                ];
                let mut text = String::new();
                let mut ms = 0u64;
                for (unit, size) in units {
                    if rng.chance(40) || (text.is_empty() && unit == "ms") {
                        let n = rng.below(100);
                        text.push_str(&format!("{n}{}", jumble(rng, unit)));
                        ms += n * size;
                    }
                }
                (text, Value::Duration(DurationValue(ms)))
            }
            GenKind::Choice(alts) => {
                let alt = rng.pick(alts).clone();
                (jumble(rng, &alt), Value::Choice(alt))
            }
            GenKind::JobId => {
                let hex = format!("{:016x}{:016x}", rng.next(), rng.next());
                let t = format!(
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..32]
                );
                (jumble(rng, &t), Value::JobId(t))
            }
            GenKind::Text => {
                let t = format!(
                    "hi{}   there \t big{}  world",
                    rng.below(100),
                    rng.below(100)
                );
                (t.clone(), Value::Text(t))
            }
        }
    }
}

#[derive(Clone, Debug)]
enum GenPart {
    Lit(String),
    Slot {
        name: String,
        kind: GenKind,
        default: Option<(String, Value)>,
    },
    /// An optional group; always contains a literal word so alternatives are distinguishable.
    Group(Vec<GenPart>),
}

#[derive(Clone, Debug)]
struct GenCommand {
    name: String,
    parts: Vec<GenPart>,
}

impl GenCommand {
    fn random(rng: &mut Rng, index: usize) -> GenCommand {
        let mut words: Vec<&str> = LITERALS.to_vec();
        let mut slot_no = 0;
        let mut slot = |rng: &mut Rng, kind: GenKind, in_group: bool| -> GenPart {
            slot_no += 1;
            let default = (in_group && rng.chance(40)).then(|| kind.value(rng));
            GenPart::Slot {
                name: format!("s{slot_no}"),
                kind,
                default,
            }
        };
        // First words come from a small set so that commands share prefixes and compete.
        let first = LITERALS[rng.below(4) as usize];
        words.retain(|w| *w != first);
        let mut take_word = |rng: &mut Rng| -> String {
            let i = rng.below(words.len() as u64) as usize;
            words.swap_remove(i).to_string()
        };
        let mut parts = Vec::new();
        if rng.chance(85) {
            parts.push(GenPart::Lit(first.to_string()));
        } else {
            let k = GenKind::random(rng);
            parts.push(slot(rng, k, false));
            parts.push(GenPart::Lit(take_word(rng)));
        }
        for _ in 0..rng.below(4) {
            match rng.below(3) {
                0 => parts.push(GenPart::Lit(take_word(rng))),
                1 => {
                    let k = GenKind::random(rng);
                    parts.push(slot(rng, k, false))
                }
                _ => {
                    let mut group = vec![GenPart::Lit(take_word(rng))];
                    for _ in 0..rng.below(3) {
                        if rng.chance(30) {
                            group.push(GenPart::Lit(take_word(rng)));
                        } else {
                            let k = GenKind::random(rng);
                            group.push(slot(rng, k, true));
                        }
                    }
                    parts.push(GenPart::Group(group));
                }
            }
        }
        match rng.below(10) {
            0 => parts.push(slot(rng, GenKind::Text, false)),
            1 => {
                let lit = GenPart::Lit(take_word(rng));
                let text = slot(rng, GenKind::Text, true);
                parts.push(GenPart::Group(vec![lit, text]));
            }
            _ => {}
        }
        GenCommand {
            name: format!("cmd{index}"),
            parts,
        }
    }

    fn pattern(&self) -> String {
        fn render(part: &GenPart) -> String {
            match part {
                GenPart::Lit(w) => w.clone(),
                GenPart::Slot {
                    name,
                    kind,
                    default,
                } => match default {
                    Some((text, _)) => format!("{{{name}:{}={text}}}", kind.type_text()),
                    None => format!("{{{name}:{}}}", kind.type_text()),
                },
                GenPart::Group(parts) => {
                    let inner: Vec<String> = parts.iter().map(render).collect();
                    format!("[{}]", inner.join(" "))
                }
            }
        }
        let parts: Vec<String> = self.parts.iter().map(render).collect();
        parts.join(" ")
    }

    fn spec(&self) -> CommandSpec {
        CommandSpec {
            name: Some(self.name.clone()),
            pattern: self.pattern(),
            help: "Generated.".into(),
            section: String::new(),
            examples: Vec::new(),
        }
    }

    /// A message for this command (optional groups taken at random) and the expected args.
    fn sample(&self, rng: &mut Rng) -> (String, BTreeMap<String, Value>) {
        let mut tokens: Vec<String> = Vec::new();
        let mut args = BTreeMap::new();
        fn emit(
            part: &GenPart,
            rng: &mut Rng,
            tokens: &mut Vec<String>,
            args: &mut BTreeMap<String, Value>,
        ) {
            match part {
                GenPart::Lit(w) => tokens.push(jumble(rng, w)),
                GenPart::Slot { name, kind, .. } => {
                    let (text, value) = kind.value(rng);
                    tokens.push(text);
                    args.insert(name.clone(), value);
                }
                GenPart::Group(parts) => {
                    if rng.chance(50) {
                        for p in parts {
                            emit(p, rng, tokens, args);
                        }
                    } else {
                        for p in parts {
                            if let GenPart::Slot {
                                name,
                                default: Some((_, v)),
                                ..
                            } = p
                            {
                                args.insert(name.clone(), v.clone());
                            }
                        }
                    }
                }
            }
        }
        for part in &self.parts {
            emit(part, rng, &mut tokens, &mut args);
        }
        let mut text = String::new();
        if rng.chance(30) {
            text.push_str("  ");
        }
        for (i, t) in tokens.iter().enumerate() {
            if i > 0 {
                let sep: &str = rng.pick::<&str>(&[" ", "  ", "\t", " \t "]);
                text.push_str(sep);
            }
            text.push_str(t);
        }
        if rng.chance(25) {
            let end: &str = rng.pick::<&str>(&["?", " ?", ".", "  "]);
            text.push_str(end);
        }
        (text, args)
    }
}

fn is_ambiguity(e: &CatalogError) -> bool {
    e.message.contains("are ambiguous")
}

/// Builds a random catalog, dropping commands reported as ambiguous until it builds.
fn random_catalog(seed: u64) -> (Vec<GenCommand>, Catalog) {
    let mut rng = Rng(seed);
    let n = 1 + rng.below(12) as usize;
    let mut cmds: Vec<GenCommand> = (0..n).map(|i| GenCommand::random(&mut rng, i)).collect();
    loop {
        match Catalog::build(cmds.iter().map(GenCommand::spec).collect()) {
            Ok(cat) => return (cmds, cat),
            Err(errors) => {
                for e in &errors {
                    assert!(is_ambiguity(e), "unexpected build error: {e}");
                }
                let drop = errors[0].index.expect("ambiguity errors carry an index");
                cmds.remove(drop);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// (a) Generated messages classify to their own command with the expected arguments,
    /// and declaring them as examples builds.
    #[test]
    fn generated_texts_classify_to_their_command(seed in any::<u64>()) {
        let (cmds, catalog) = random_catalog(seed);
        let mut rng = Rng(seed ^ 0xDEAD_BEEF);
        let mut with_examples = Vec::new();
        for cmd in &cmds {
            let mut spec = cmd.spec();
            for _ in 0..4 {
                let (text, args) = cmd.sample(&mut rng);
                match catalog.classify(&text) {
                    Classification::Matched(m) => {
                        prop_assert_eq!(&m.command, &cmd.name, "text {:?} pattern {:?}", text, cmd.pattern());
                        prop_assert_eq!(&m.args, &args, "text {:?} pattern {:?}", text, cmd.pattern());
                    }
                    other => prop_assert!(false, "text {:?} for {:?} gave {:?}", text, cmd.pattern(), other),
                }
                spec.examples.push(text);
            }
            with_examples.push(spec);
        }
        let rebuilt = Catalog::build(with_examples);
        prop_assert!(rebuilt.is_ok(), "{:?}", rebuilt.err());
    }

    /// (b) Arbitrary unicode never panics.
    #[test]
    fn arbitrary_text_never_panics(seed in any::<u64>(), text in any::<String>()) {
        let (_, catalog) = random_catalog(seed);
        exercise(&catalog, &text)?;
    }

    /// (b) Token soup from the catalog's own words (and near misses) never panics.
    #[test]
    fn token_soup_never_panics(
        seed in any::<u64>(),
        picks in prop::collection::vec((0usize..64, 0usize..4), 0..10),
    ) {
        let (cmds, catalog) = random_catalog(seed);
        let mut vocab: Vec<String> = LITERALS.iter().chain(CHOICES).map(|s| s.to_string()).collect();
        vocab.extend(["10.0.0.1", "999.1.1.1", "5m", "30", "-7", "x", "?", ".", "[", "{a:word}", "é", "ǅ", "İ"].map(String::from));
        let mut rng = Rng(seed);
        for c in &cmds {
            vocab.push(c.sample(&mut rng).0);
        }
        let mut text = String::new();
        for (i, sep) in picks {
            text.push_str(&vocab[i % vocab.len()]);
            text.push_str([" ", "  ", "\t", ""][sep]);
        }
        exercise(&catalog, &text)?;
    }

    /// Arbitrary pattern text (unicode, or soup of the pattern language's own symbols) never
    /// panics the compiler; whatever builds also answers every entry point.
    #[test]
    fn arbitrary_patterns_never_panic(
        raw in any::<String>(),
        soup in prop::collection::vec(
            prop::sample::select(vec![
                "[", "]", "{", "}", ":", "=", "|", "..", "(", ")", " ", "int", "text", "word",
                "ip", "a", "b", "x", "1", "-5", "é", "int(1..3)", "{a:word}", "{t:text}", "[b]",
            ]),
            0..14,
        ),
        examples in prop::collection::vec(any::<String>(), 0..3),
    ) {
        let specs = vec![
            CommandSpec { pattern: raw, examples: examples.clone(), ..CommandSpec::default() },
            CommandSpec { pattern: soup.concat(), examples, ..CommandSpec::default() },
            CommandSpec { pattern: soup.join(" "), ..CommandSpec::default() },
        ];
        match Catalog::build(specs) {
            Ok(catalog) => {
                let _ = catalog.help_overview();
                for def in catalog.commands() {
                    exercise(&catalog, def.pattern())?;
                    let _ = def.usage();
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in errors {
                    prop_assert!(e.index.is_some_and(|i| i < 3), "{:?}", e);
                    prop_assert!(e.message.starts_with("pattern") || e.message.starts_with("patterns"));
                }
            }
        }
    }

    /// (c) Values round-trip through JSON.
    #[test]
    fn values_round_trip_through_json(value in value_strategy()) {
        let json = serde_json::to_string(&value).unwrap();
        let back: Value = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &value);
        let map: BTreeMap<String, Value> = [("arg".to_string(), value.clone())].into();
        let json = serde_json::to_string(&map).unwrap();
        let back: BTreeMap<String, Value> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, map);
    }
}

/// Runs every text entry point and checks cheap invariants.
fn exercise(catalog: &Catalog, text: &str) -> Result<(), TestCaseError> {
    let first = catalog.classify(text);
    prop_assert_eq!(&first, &catalog.classify(text), "deterministic");
    match &first {
        Classification::Matched(m) => prop_assert!(catalog.get(&m.command).is_some()),
        Classification::BadArgument(e) => prop_assert!(catalog.get(&e.command).is_some()),
        Classification::Unknown { suggestions, .. } => prop_assert!(suggestions.len() <= 3),
        Classification::Empty => {
            prop_assert!(text.trim().trim_end_matches(['?', '.']).trim().is_empty())
        }
    }
    let _ = first.to_string();
    let explained = catalog.explain(text);
    prop_assert!(explained.starts_with("message: "));
    let completions = catalog.complete(text);
    let mut sorted = completions.clone();
    sorted.sort();
    sorted.dedup();
    prop_assert_eq!(sorted, completions);
    let _ = catalog.help_for(text);
    Ok(())
}

fn value_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::Word),
        any::<String>().prop_map(Value::Name),
        any::<String>().prop_map(Value::Hostname),
        any::<IpAddr>().prop_map(Value::Ip),
        any::<String>().prop_map(Value::Cidr),
        any::<i64>().prop_map(Value::Int),
        any::<u64>().prop_map(|ms| Value::Duration(DurationValue(ms))),
        any::<String>().prop_map(Value::Choice),
        any::<String>().prop_map(Value::JobId),
        any::<String>().prop_map(Value::Text),
    ]
}
