//! A random program generator that follows `lang/grammar/authz.pest` rule by rule, and the
//! mutations that break its programs.
//!
//! The generator writes *text*, not trees: a program is a list of tokens, each produced by the
//! function named after the grammar rule that produces it, and [`render`] joins the tokens with
//! random trivia (spaces, tabs, line breaks, `//` comments, or nothing where the tokens stay
//! apart without it). Everything is driven by a seeded [`Rng`], so a seed always gives the same
//! programs. Depth and size are bounded so that programs stay small enough to shrink and parse
//! quickly, yet every rule of the grammar is reached.

/// A small deterministic random number generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n` must not be zero.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The keywords of the language.
pub const KEYWORDS: &[&str] = &[
    "entity",
    "action",
    "route",
    "permit",
    "forbid",
    "when",
    "unless",
    "limit",
    "per",
    "in",
    "has",
    "like",
    "is",
    "if",
    "then",
    "else",
    "true",
    "false",
    "principal",
    "resource",
    "context",
    "with",
];

/// Identifiers, including some that look like keywords but are not.
const IDENTS: &[&str] = &[
    "User",
    "Team",
    "Order",
    "Service",
    "read",
    "list",
    "a",
    "b",
    "x9",
    "_",
    "_tmp",
    "Set",
    "String",
    "Long",
    "Bool",
    "inx",
    "iff",
    "permits",
    "Principal",
    "TRUE",
    "entity_",
    "minute",
    "GET",
    "ANY",
    "contains",
    "withx",
    "is_",
    "Action",
    "f",
];

/// Characters that may stand for themselves inside a string literal.
const STRING_CHARS: &[&str] = &[
    "a", "Z", "0", " ", "/", "{", "}", "*", "'", "-", "_", ".", "é", "😀", "\t", "\r", "//", "#",
    "@", ";", "ß",
];

/// Escapes that do not need a value.
const SIMPLE_ESCAPES: &[&str] = &["\\\"", "\\\\", "\\n", "\\r", "\\t", "\\0", "\\'"];

/// Characters that may appear inside a comment.
const COMMENT_CHARS: &[&str] = &[
    "a", " ", "\"", "\\", "/", "*", "é", "😀", "\t", "\r", "{", ";", "@",
];

/// Tokens that mutations insert: every token kind of the language, and some that are not tokens.
pub const MUTATION_TOKENS: &[&str] = &[
    // Punctuation.
    ";",
    ",",
    ":",
    ".",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<",
    ">",
    "@",
    "|",
    "->",
    "=>",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "!",
    "+",
    "-",
    "*",
    "?",
    "=",
    // Words, numbers, strings.
    "User",
    "Set",
    "x",
    "0",
    "42",
    "9223372036854775807",
    "\"s\"",
    "\"\\u{1F600}\"",
    // Not tokens, or malformed ones.
    "&",
    "/",
    "#",
    "$",
    "9223372036854775808",
    "99999999999999999999",
    "\"\\q\"",
    "\"\\u{D800}\"",
    "\"\\u{110000}\"",
    "\"open",
    "/*",
    "'a'",
    "1.5",
    "\u{a0}",
    "\u{feff}",
    "\u{c}",
    "`",
];

/// A random program generator; see the module documentation.
pub struct Generator {
    rng: Rng,
    tokens: Vec<String>,
    /// The token count at which expressions stop growing.
    budget: usize,
}

/// How deep expressions and types may nest.
const MAX_DEPTH: u32 = 4;

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: Rng::new(seed),
            tokens: Vec::new(),
            budget: 0,
        }
    }

    /// The random number generator, for rendering and mutating what was generated.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// A whole program, as tokens: `file = { SOI ~ item* ~ EOI }`.
    pub fn file(&mut self) -> Vec<String> {
        self.tokens.clear();
        let items = self.rng.below(5);
        for _ in 0..items {
            self.item();
        }
        std::mem::take(&mut self.tokens)
    }

    fn push(&mut self, token: &str) {
        self.tokens.push(token.to_string());
    }

    /// How many more repetitions a `( ... )*` gets: few, and none once the budget is spent.
    fn reps(&mut self, max: usize) -> usize {
        if self.tokens.len() >= self.budget {
            return 0;
        }
        match self.rng.below(10) {
            0..=5 => 0,
            6..=8 => 1.min(max),
            _ => self.rng.below(max + 1),
        }
    }

    // Lexical rules.

    fn ident(&mut self) {
        let ident = *self.rng.pick(IDENTS);
        self.push(ident);
    }

    fn any_word(&mut self) {
        if self.rng.chance(40) {
            let keyword = *self.rng.pick(KEYWORDS);
            self.push(keyword);
        } else {
            self.ident();
        }
    }

    fn field_name(&mut self) {
        if self.rng.chance(15) {
            self.string();
        } else {
            self.any_word();
        }
    }

    fn int(&mut self) {
        let value: u64 = match self.rng.below(10) {
            0 => i64::MAX as u64,
            1 => i64::MAX as u64 - self.rng.below(1000) as u64,
            2 => self.rng.next_u64() >> 1,
            3 => 10u64.pow(self.rng.below(19) as u32),
            _ => self.rng.below(1000) as u64,
        };
        let zeros = if self.rng.chance(10) {
            "0".repeat(1 + self.rng.below(3))
        } else {
            String::new()
        };
        self.tokens.push(format!("{zeros}{value}"));
    }

    fn string(&mut self) {
        let mut text = String::from("\"");
        for _ in 0..self.rng.below(6) {
            match self.rng.below(10) {
                0..=5 => text.push_str(self.rng.pick::<&str>(STRING_CHARS)),
                6 | 7 => text.push_str(self.rng.pick::<&str>(SIMPLE_ESCAPES)),
                _ => text.push_str(&self.unicode_escape()),
            }
        }
        text.push('"');
        self.tokens.push(text);
    }

    /// `\u{X}` for a random scalar value, in 1 to 6 digits of either case.
    fn unicode_escape(&mut self) -> String {
        let value: u32 = match self.rng.below(6) {
            0 => 0,
            1 => 0x10FFFF,
            2 => *self.rng.pick(&[0xD7FF, 0xE000, 0xFFFF, 0x1F600, 0x10000]),
            3 => self.rng.below(0x80) as u32,
            _ => {
                let value = self.rng.below(0x110000) as u32;
                if (0xD800..=0xDFFF).contains(&value) {
                    0x41
                } else {
                    value
                }
            }
        };
        let digits = format!("{value:x}");
        let zeros = "0".repeat(self.rng.below(6 - digits.len() + 1));
        let digits = if self.rng.chance(50) {
            digits.to_uppercase()
        } else {
            digits
        };
        format!("\\u{{{zeros}{digits}}}")
    }

    // Items.

    fn item(&mut self) {
        self.budget = self.tokens.len() + 40;
        for _ in 0..self.reps(3) {
            self.annotation();
        }
        match self.rng.below(11) {
            0 | 1 => self.entity(),
            2 => self.action(),
            3 => self.route(),
            4..=7 => self.policy(),
            8 => self.type_alias(),
            _ => self.limit(),
        }
    }

    fn annotation(&mut self) {
        self.push("@");
        self.any_word();
        if self.rng.chance(70) {
            self.push("(");
            self.string();
            self.push(")");
        }
    }

    fn entity(&mut self) {
        self.push("entity");
        self.ident();
        if self.rng.chance(50) {
            self.push("in");
            self.type_list();
        }
        if self.rng.chance(60) {
            self.record_type(MAX_DEPTH);
            if self.rng.chance(50) {
                self.push(";");
            }
        } else {
            self.push(";");
        }
    }

    fn type_list(&mut self) {
        if self.rng.chance(50) {
            self.ident();
            return;
        }
        self.push("[");
        self.ident();
        for _ in 0..self.reps(3) {
            self.push(",");
            self.ident();
        }
        self.trailing_comma();
        self.push("]");
    }

    fn trailing_comma(&mut self) {
        if self.rng.chance(20) {
            self.push(",");
        }
    }

    fn record_type(&mut self, depth: u32) {
        self.push("{");
        if self.rng.chance(85) {
            self.field_type(depth);
            for _ in 0..self.reps(4) {
                self.push(",");
                self.field_type(depth);
            }
            self.trailing_comma();
        }
        self.push("}");
    }

    fn field_type(&mut self, depth: u32) {
        self.field_name();
        if self.rng.chance(30) {
            self.push("?");
        }
        self.push(":");
        self.type_expr(depth);
    }

    fn type_expr(&mut self, depth: u32) {
        let choice = if depth == 0 || self.tokens.len() >= self.budget {
            1
        } else {
            self.rng.below(6)
        };
        match choice {
            0 => {
                self.push("Set");
                self.push("<");
                self.type_expr(depth - 1);
                self.push(">");
            }
            5 => self.record_type(depth - 1),
            _ => self.ident(),
        }
    }

    fn type_alias(&mut self) {
        self.push("type");
        self.ident();
        self.push("=");
        self.type_expr(MAX_DEPTH);
        self.push(";");
    }

    fn action(&mut self) {
        self.push("action");
        self.ident();
        for _ in 0..self.reps(3) {
            self.push(",");
            self.ident();
        }
        if self.rng.chance(40) {
            self.push("in");
            self.type_list();
        }
        if self.rng.chance(25) {
            self.push(";");
            return;
        }
        self.push(":");
        self.ident();
        for _ in 0..self.reps(3) {
            self.push("|");
            self.ident();
        }
        self.push("->");
        self.ident();
        for _ in 0..self.reps(3) {
            self.push("|");
            self.ident();
        }
        if self.rng.chance(40) {
            self.push("with");
            if self.rng.chance(25) {
                self.ident();
            } else {
                self.record_type(MAX_DEPTH);
            }
        }
        self.push(";");
    }

    fn route(&mut self) {
        self.push("route");
        self.ident();
        self.string();
        self.push("=>");
        self.ident();
        self.ident();
        self.push("(");
        if self.rng.chance(70) {
            self.ident();
        } else {
            self.string();
        }
        self.push(")");
        self.push(";");
    }

    fn policy(&mut self) {
        let effect = if self.rng.chance(60) {
            "permit"
        } else {
            "forbid"
        };
        self.push(effect);
        self.push("principal");
        self.var_constraint();
        self.push(",");
        self.action_scope();
        self.push(",");
        self.push("resource");
        self.var_constraint();
        for _ in 0..self.reps(3) {
            let keyword = if self.rng.chance(60) {
                "when"
            } else {
                "unless"
            };
            self.push(keyword);
            self.expr(MAX_DEPTH);
        }
        if self.rng.chance(50) {
            self.push("when");
            self.expr(MAX_DEPTH);
        }
        self.push(";");
    }

    fn var_constraint(&mut self) {
        match self.rng.below(5) {
            0 => {
                self.push(":");
                self.push("*");
            }
            1 | 2 => {
                self.push(":");
                self.ident();
                if self.rng.chance(30) {
                    self.push("in");
                    self.entity_ref();
                }
            }
            3 => {
                self.push("==");
                self.entity_ref();
            }
            _ => {
                self.push("in");
                self.entity_ref();
            }
        }
    }

    fn entity_ref(&mut self) {
        self.ident();
        self.push("(");
        self.string();
        self.push(")");
    }

    fn action_scope(&mut self) {
        self.push("action");
        let colon = self.rng.chance(75);
        self.push(if colon { ":" } else { "in" });
        match self.rng.below(3) {
            0 if colon => self.push("*"),
            0 | 1 => self.ident(),
            _ => {
                self.push("[");
                self.ident();
                for _ in 0..self.reps(3) {
                    self.push(",");
                    self.ident();
                }
                self.trailing_comma();
                self.push("]");
            }
        }
    }

    fn limit(&mut self) {
        self.push("limit");
        self.string();
        self.int();
        self.push("per");
        if self.rng.chance(30) {
            self.int();
        }
        self.ident();
        if self.rng.chance(30) {
            self.push("burst");
            self.int();
        }
        if self.rng.chance(30) {
            self.push("on");
            self.push("attempts");
        }
        if self.rng.chance(60) {
            self.push("per");
            self.expr(MAX_DEPTH);
            for _ in 0..self.reps(2) {
                self.push(",");
                self.expr(MAX_DEPTH);
            }
        }
        if self.rng.chance(50) {
            self.push("when");
            self.expr(MAX_DEPTH);
        }
        self.push(";");
    }

    // Expressions.

    fn expr(&mut self, depth: u32) {
        if depth > 0 && self.tokens.len() < self.budget && self.rng.chance(10) {
            self.if_expr(depth - 1);
        } else {
            self.or_expr(depth);
        }
    }

    fn if_expr(&mut self, depth: u32) {
        self.push("if");
        self.expr(depth);
        self.push("then");
        self.expr(depth);
        self.push("else");
        self.expr(depth);
    }

    fn or_expr(&mut self, depth: u32) {
        self.and_expr(depth);
        for _ in 0..self.reps(2) {
            self.push("||");
            self.and_expr(depth);
        }
    }

    fn and_expr(&mut self, depth: u32) {
        self.compare(depth);
        for _ in 0..self.reps(2) {
            self.push("&&");
            self.compare(depth);
        }
    }

    fn compare(&mut self, depth: u32) {
        self.sum(depth);
        if self.tokens.len() >= self.budget {
            return;
        }
        match self.rng.below(12) {
            0..=4 => {}
            5 | 6 => {
                let op = *self.rng.pick(&["==", "!=", "<=", ">=", "<", ">", "in"]);
                self.push(op);
                self.sum(depth);
            }
            7 | 8 => {
                self.push("has");
                self.field_name();
            }
            9 => {
                self.push("like");
                self.string();
            }
            _ => {
                self.push("is");
                self.ident();
                if self.rng.chance(40) {
                    self.push("in");
                    self.sum(depth);
                }
            }
        }
    }

    fn sum(&mut self, depth: u32) {
        self.product(depth);
        for _ in 0..self.reps(2) {
            let op = if self.rng.chance(50) { "+" } else { "-" };
            self.push(op);
            self.product(depth);
        }
    }

    fn product(&mut self, depth: u32) {
        self.unary(depth);
        for _ in 0..self.reps(2) {
            self.push("*");
            self.unary(depth);
        }
    }

    fn unary(&mut self, depth: u32) {
        if self.rng.chance(20) {
            for _ in 0..1 + self.rng.below(3) {
                let op = if self.rng.chance(50) { "!" } else { "-" };
                self.push(op);
            }
        }
        self.postfix(depth);
    }

    fn postfix(&mut self, depth: u32) {
        self.primary(depth);
        for _ in 0..self.reps(3) {
            self.push(".");
            self.field_name();
            if self.rng.chance(30) {
                self.call_args(depth);
            }
        }
    }

    fn call_args(&mut self, depth: u32) {
        self.push("(");
        if depth > 0 && self.rng.chance(60) {
            self.args(depth - 1);
        }
        self.push(")");
    }

    fn args(&mut self, depth: u32) {
        self.expr(depth);
        for _ in 0..self.reps(3) {
            self.push(",");
            self.expr(depth);
        }
        self.trailing_comma();
    }

    fn primary(&mut self, depth: u32) {
        let choices = if depth == 0 || self.tokens.len() >= self.budget {
            7
        } else {
            11
        };
        match self.rng.below(choices) {
            0 => {
                let literal = if self.rng.chance(50) { "true" } else { "false" };
                self.push(literal);
            }
            1 => self.int(),
            2 => self.string(),
            3 | 4 => {
                let var = *self
                    .rng
                    .pick(&["principal", "action", "resource", "context"]);
                self.push(var);
            }
            5 | 6 => {
                self.ident();
                self.call_args(depth);
            }
            7 => {
                self.push("[");
                if self.rng.chance(80) {
                    self.args(depth - 1);
                }
                self.push("]");
            }
            8 => {
                self.push("{");
                if self.rng.chance(80) {
                    self.field_init(depth - 1);
                    for _ in 0..self.reps(3) {
                        self.push(",");
                        self.field_init(depth - 1);
                    }
                    self.trailing_comma();
                }
                self.push("}");
            }
            _ => {
                self.push("(");
                self.expr(depth - 1);
                self.push(")");
            }
        }
    }

    fn field_init(&mut self, depth: u32) {
        self.field_name();
        self.push(":");
        self.expr(depth);
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `before` and `after` may be written with nothing between them and still read as the
/// same two tokens: not two words or numbers that would merge.
fn may_touch(before: &str, after: &str) -> bool {
    let (Some(last), Some(first)) = (before.chars().last(), after.chars().next()) else {
        return true;
    };
    if !is_word_char(last) || !is_word_char(first) {
        return true;
    }
    // A number followed by a word: `1per` is `1` then `per`.
    before.chars().all(|c| c.is_ascii_digit()) && !first.is_ascii_digit()
}

/// Random trivia to stand between two tokens (or at either end of the file).
fn trivia(rng: &mut Rng, may_be_empty: bool) -> String {
    let mut text = String::new();
    loop {
        match rng.below(40) {
            0..=27 => text.push(' '),
            28..=30 => text.push('\n'),
            31 => text.push('\t'),
            32 => text.push_str("\r\n"),
            33 => text.push_str("\n    "),
            34 | 35 => {
                text.push_str("//");
                for _ in 0..rng.below(8) {
                    text.push_str(rng.pick::<&str>(COMMENT_CHARS));
                }
                text.push('\n');
            }
            _ if may_be_empty && text.is_empty() => return text,
            _ => text.push(' '),
        }
        if !rng.chance(10) {
            return text;
        }
    }
}

/// Joins tokens into a program text with random whitespace and comments between them.
pub fn render(tokens: &[String], rng: &mut Rng) -> String {
    let mut text = if rng.chance(20) {
        trivia(rng, false)
    } else {
        String::new()
    };
    let mut previous: Option<&str> = None;
    for token in tokens {
        if let Some(previous) = previous {
            let may_be_empty = may_touch(previous, token) && rng.chance(30);
            text.push_str(&trivia(rng, may_be_empty));
        }
        text.push_str(token);
        previous = Some(token);
    }
    if rng.chance(20) {
        text.push_str(&trivia(rng, false));
        if rng.chance(30) {
            // A comment at the very end, without a line break.
            text.push_str("// end");
        }
    }
    text
}

/// Applies one random token-level mutation: delete, duplicate, swap with the next, or insert a
/// token, either from elsewhere in the program or from [`MUTATION_TOKENS`] and the keywords.
pub fn mutate_tokens(tokens: &mut Vec<String>, rng: &mut Rng) {
    let len = tokens.len();
    let at = if len == 0 { 0 } else { rng.below(len) };
    match rng.below(4) {
        0 if len > 0 => {
            tokens.remove(at);
        }
        1 if len > 0 => {
            let token = tokens[at].clone();
            tokens.insert(at, token);
        }
        2 if len > 1 => {
            let other = (at + 1) % len;
            tokens.swap(at, other);
        }
        _ => {
            let token = match rng.below(3) {
                0 if len > 0 => tokens[rng.below(len)].clone(),
                1 => (*rng.pick(KEYWORDS)).to_string(),
                _ => (*rng.pick(MUTATION_TOKENS)).to_string(),
            };
            tokens.insert(rng.below(len + 1), token);
        }
    }
}

/// Characters that character-level mutations insert.
const MUTATION_CHARS: &[char] = &[
    ' ', '\n', '\r', '\t', '\u{c}', '\u{0}', '"', '\\', '/', '*', '=', '<', '>', '-', '!', '|',
    '&', '.', ',', ';', ':', '(', ')', '[', ']', '{', '}', '@', '?', '+', '#', '0', '9', 'a', 'z',
    '_', 'u', 'é', '😀', '\u{a0}', '\u{feff}',
];

/// Applies one random character-level mutation to `text`: delete, duplicate, swap with the
/// next, or insert a character.
pub fn mutate_chars(text: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let len = chars.len();
    let at = if len == 0 { 0 } else { rng.below(len) };
    match rng.below(4) {
        0 if len > 0 => {
            chars.remove(at);
        }
        1 if len > 0 => {
            let c = chars[at];
            chars.insert(at, c);
        }
        2 if len > 1 => {
            let other = (at + 1) % len;
            chars.swap(at, other);
        }
        _ => {
            let c = if rng.chance(50) && len > 0 {
                chars[rng.below(len)]
            } else {
                *rng.pick(MUTATION_CHARS)
            };
            chars.insert(rng.below(len + 1), c);
        }
    }
    chars.into_iter().collect()
}
