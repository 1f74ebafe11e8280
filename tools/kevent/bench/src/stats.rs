// SPDX-License-Identifier: GPL-2.0

//! Runs, summaries and Markdown tables.

use std::fmt::Write as _;

/// What came of measuring one mechanism: not available, failed (with the
/// reason; no number is reported), or one sample per run.
pub enum Outcome<T> {
    Na(String),
    Failed(String),
    Ok(Vec<T>),
}

impl<T> Outcome<T> {
    /// The samples, if every run succeeded.
    pub fn samples(&self) -> Option<&[T]> {
        match self {
            Outcome::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// The median of `f` over the samples, if every run succeeded.
    pub fn median_of(&self, f: impl Fn(&T) -> f64) -> Option<f64> {
        self.samples()
            .map(|v| summarize(&v.iter().map(f).collect::<Vec<_>>()).median)
    }
}

/// Measures several mechanisms `runs` times each, interleaved (run 1 of
/// every mechanism, then run 2, ...) so that slow drift of the machine does
/// not favour one of them. `mechs` gives each mechanism's label and, if it
/// cannot run, why; `f(i)` makes one run of mechanism `i`. A mechanism is
/// dropped at its first failure. Progress goes to stderr, described by
/// `show`.
pub fn interleave<T>(
    mechs: &[(String, Option<String>)],
    runs: usize,
    mut f: impl FnMut(usize) -> Result<T, String>,
    show: impl Fn(&T) -> String,
) -> Vec<Outcome<T>> {
    let mut out: Vec<Outcome<T>> = mechs
        .iter()
        .map(|(_, na)| match na {
            Some(why) => Outcome::Na(why.clone()),
            None => Outcome::Ok(Vec::with_capacity(runs)),
        })
        .collect();
    for r in 1..=runs {
        for (i, (label, _)) in mechs.iter().enumerate() {
            let Outcome::Ok(v) = &mut out[i] else {
                continue;
            };
            match f(i) {
                Ok(s) => {
                    eprintln!("  {label}: run {r}/{runs}: {}", show(&s));
                    v.push(s);
                }
                Err(e) => {
                    eprintln!("  {label}: run {r}/{runs}: FAILED: {e}");
                    out[i] = Outcome::Failed(format!("run {r}: {e}"));
                }
            }
        }
    }
    out
}

/// Median, minimum and maximum.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The summary of `v` (not empty). The median of an even count is the mean
/// of the middle two.
pub fn summarize(v: &[f64]) -> Summary {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let median = if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Summary {
        median,
        min: s.first().copied().unwrap_or(f64::NAN),
        max: s.last().copied().unwrap_or(f64::NAN),
    }
}

/// The summary of `f` over `v`.
pub fn summarize_by<T>(v: &[T], f: impl Fn(&T) -> f64) -> Summary {
    summarize(&v.iter().map(f).collect::<Vec<_>>())
}

/// A number with as many digits as make sense for its size.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        "—".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A small count per event (syscalls/event): three decimals.
pub fn per(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "—".into()
    }
}

/// A ratio: two decimals, or a dash if it is not defined.
pub fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b != 0.0 {
        format!("{:.2}", a / b)
    } else {
        "—".into()
    }
}

/// `min–max`.
pub fn range(s: &Summary) -> String {
    format!("{}–{}", num(s.min), num(s.max))
}

/// A Markdown table with a heading.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// For a mechanism without numbers, adds a row of the `lead` cells
    /// followed by "n/a (...)" or "FAILED: ..." and returns true.
    pub fn row_outcome<T>(&mut self, lead: &[&str], o: &Outcome<T>) -> bool {
        let text = match o {
            Outcome::Na(why) => format!("n/a ({why})"),
            Outcome::Failed(why) => format!("FAILED: {why}"),
            Outcome::Ok(_) => return false,
        };
        let mut cells: Vec<String> = lead.iter().map(|s| s.to_string()).collect();
        cells.push(text);
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
        true
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "### {}\n", self.title);
        let line = |cells: &[String]| {
            let esc: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", esc.join(" | "))
        };
        s += &line(&self.header);
        s += &format!("|{}\n", "---|".repeat(self.header.len()));
        for r in &self.rows {
            s += &line(r);
        }
        s
    }
}
