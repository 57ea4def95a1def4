//! The LogQL syntax tree (Loki 3's grammar).

use periscope_model::Matcher;

/// A query: a log query (streams of entries) or a metric query (samples).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Log(LogExpr),
    Metric(MetricExpr),
}

/// A stream selector and its pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct LogExpr {
    pub selector: Vec<Matcher>,
    pub stages: Vec<Stage>,
}

/// How a line filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=`
    Contains,
    /// `!=`
    NotContains,
    /// `|~`
    Match,
    /// `!~`
    NotMatch,
    /// `|>`
    Pattern,
    /// `!>`
    NotPattern,
}

/// How a string label filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrOp {
    Eq,
    Neq,
    Re,
    Nre,
}

/// How a numeric (number, duration, bytes) label filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// The value of a numeric label filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpValue {
    Number(f64),
    /// Nanoseconds.
    Duration(i64),
    Bytes(u64),
}

/// A label filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFilter {
    Str { name: String, op: StrOp, value: String },
    Cmp { name: String, op: CmpOp, value: CmpValue },
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
}

/// A label named in `drop` or `keep`, optionally only when its value matches.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedLabel {
    pub name: String,
    pub matcher: Option<(StrOp, String)>,
}

/// One pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// A line filter; more than one value means `or` between them.
    LineFilter {
        op: LineFilterOp,
        values: Vec<String>,
    },
    /// `| json` with optional `label="expression"` parameters.
    Json {
        params: Vec<(String, String)>,
    },
    /// `| logfmt` with flags and optional parameters.
    Logfmt {
        strict: bool,
        keep_empty: bool,
        params: Vec<(String, String)>,
    },
    Regexp(String),
    Pattern(String),
    Unpack,
    LabelFilter(LabelFilter),
    LineFormat(String),
    /// `| label_format dst=src` (rename, `Rename`) or `dst="template"`.
    LabelFormat(Vec<LabelFormatOp>),
    Drop(Vec<NamedLabel>),
    Keep(Vec<NamedLabel>),
    Decolorize,
}

/// One assignment of `label_format`.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFormatOp {
    Rename { dst: String, src: String },
    Template { dst: String, template: String },
}

/// How `unwrap` converts the label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwrapConv {
    None,
    Duration,
    DurationSeconds,
    Bytes,
}

/// `| unwrap [conv(]label[)]` with the label filters that follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrap {
    pub label: String,
    pub conv: UnwrapConv,
    pub post_filters: Vec<LabelFilter>,
}

/// A range aggregation over a log query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    Rate,
    CountOverTime,
    BytesRate,
    BytesOverTime,
    AbsentOverTime,
    RateCounter,
    SumOverTime,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
}

impl RangeOp {
    fn from_name(n: &str) -> Option<RangeOp> {
        Some(match n {
            "rate" => RangeOp::Rate,
            "count_over_time" => RangeOp::CountOverTime,
            "bytes_rate" => RangeOp::BytesRate,
            "bytes_over_time" => RangeOp::BytesOverTime,
            "absent_over_time" => RangeOp::AbsentOverTime,
            "rate_counter" => RangeOp::RateCounter,
            "sum_over_time" => RangeOp::SumOverTime,
            "avg_over_time" => RangeOp::AvgOverTime,
            "min_over_time" => RangeOp::MinOverTime,
            "max_over_time" => RangeOp::MaxOverTime,
            "stddev_over_time" => RangeOp::StddevOverTime,
            "stdvar_over_time" => RangeOp::StdvarOverTime,
            "quantile_over_time" => RangeOp::QuantileOverTime,
            "first_over_time" => RangeOp::FirstOverTime,
            "last_over_time" => RangeOp::LastOverTime,
            _ => return None,
        })
    }

    pub(crate) fn parse(n: &str) -> Option<RangeOp> {
        Self::from_name(n)
    }

    /// Whether the aggregation works on unwrapped values (and so needs `| unwrap`).
    pub fn needs_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::Rate
                | RangeOp::CountOverTime
                | RangeOp::BytesRate
                | RangeOp::BytesOverTime
                | RangeOp::AbsentOverTime
        )
    }
}

/// A vector aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

impl VectorOp {
    pub(crate) fn parse(n: &str) -> Option<VectorOp> {
        Some(match n {
            "sum" => VectorOp::Sum,
            "avg" => VectorOp::Avg,
            "min" => VectorOp::Min,
            "max" => VectorOp::Max,
            "count" => VectorOp::Count,
            "stddev" => VectorOp::Stddev,
            "stdvar" => VectorOp::Stdvar,
            "topk" => VectorOp::Topk,
            "bottomk" => VectorOp::Bottomk,
            "sort" => VectorOp::Sort,
            "sort_desc" => VectorOp::SortDesc,
            _ => return None,
        })
    }
}

/// `by (...)` or `without (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Unless,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// Vector matching of a binary operation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VectorMatching {
    /// `on` (true) or `ignoring` (false), with their labels; `None` when neither is given.
    pub on: Option<(bool, Vec<String>)>,
    /// `group_left` (true) or `group_right` (false), with the labels to include.
    pub group: Option<(bool, Vec<String>)>,
}

/// A metric query.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricExpr {
    Range {
        op: RangeOp,
        /// `quantile_over_time`'s φ.
        param: Option<f64>,
        log: LogExpr,
        unwrap: Option<Unwrap>,
        /// Nanoseconds.
        range: i64,
        /// Nanoseconds.
        offset: i64,
        grouping: Option<Grouping>,
    },
    Vector {
        op: VectorOp,
        param: Option<f64>,
        grouping: Option<Grouping>,
        inner: Box<MetricExpr>,
    },
    Binary {
        op: BinOp,
        bool_modifier: bool,
        matching: VectorMatching,
        lhs: Box<MetricExpr>,
        rhs: Box<MetricExpr>,
    },
    Literal(f64),
    /// `vector(n)`.
    VectorLiteral(f64),
    LabelReplace {
        inner: Box<MetricExpr>,
        dst: String,
        replacement: String,
        src: String,
        regex: String,
    },
}
