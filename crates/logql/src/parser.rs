//! The LogQL parser: a recursive-descent parser over [`lex`]'s tokens, binary operators by
//! precedence climbing (`or` < `and`/`unless` < comparisons < `+ -` < `* / %` < `^`, the
//! last right-associative), errors as Loki words them: `parse error at line L, col C: ...`.

use crate::ast::*;
use crate::lexer::{lex, Tok, Token};
use crate::ParseError;
use periscope_model::{MatchOp, Matcher};

/// Parses a LogQL query.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let mut p = Parser { toks: lex(input)?, pos: 0, depth: 0 };
    let e = p.expr(0)?;
    p.expect_eof()?;
    Ok(match e {
        Node::Log(l) => Expr::Log(l),
        Node::Metric(m) => Expr::Metric(m),
    })
}

/// Parses a stream selector alone (`{a="b", c=~"d"}`), as `/series` and `/labels` take it.
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    let mut p = Parser { toks: lex(input)?, pos: 0, depth: 0 };
    let m = p.selector()?;
    p.expect_eof()?;
    Ok(m)
}

enum Node {
    Log(LogExpr),
    Metric(MetricExpr),
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Nesting of parentheses, aggregations and unary minus, bounded by [`MAX_DEPTH`].
    depth: usize,
}

/// Deepest nesting a query may have (a guard for the stack, far above real queries).
const MAX_DEPTH: usize = 64;

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("IDENTIFIER {s}"),
        Tok::Str(s) => format!("STRING {s:?}"),
        Tok::Number(n) => format!("NUMBER {n}"),
        Tok::Duration(_) => "DURATION".into(),
        Tok::Bytes(_) => "BYTES".into(),
        Tok::Eof => "end of input".into(),
        other => format!("{other:?}"),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_here(&self, msg: impl Into<String>) -> ParseError {
        let t = &self.toks[self.pos.min(self.toks.len() - 1)];
        ParseError { line: t.line, col: t.col, msg: msg.into() }
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        self.err_here(format!("syntax error: unexpected {}, expecting {wanted}", describe(self.peek())))
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok, wanted: &str) -> Result<(), ParseError> {
        if self.eat(&t) {
            Ok(())
        } else {
            Err(self.unexpected(wanted))
        }
    }

    fn expect_eof(&self) -> Result<(), ParseError> {
        if *self.peek() == Tok::Eof {
            Ok(())
        } else {
            Err(self.err_here(format!("syntax error: unexpected {}", describe(self.peek()))))
        }
    }

    fn is_ident(&self, name: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == name)
    }

    fn ident(&mut self, wanted: &str) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(wanted)),
        }
    }

    fn string(&mut self, wanted: &str) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(wanted)),
        }
    }

    fn duration(&mut self) -> Result<i64, ParseError> {
        match self.peek().clone() {
            Tok::Duration(d) => {
                self.next();
                Ok(d)
            }
            _ => Err(self.unexpected("DURATION")),
        }
    }

    fn number(&mut self) -> Result<f64, ParseError> {
        let neg = self.eat(&Tok::Sub);
        match self.peek().clone() {
            Tok::Number(n) => {
                self.next();
                Ok(if neg { -n } else { n })
            }
            _ => Err(self.unexpected("NUMBER")),
        }
    }

    // ---- log queries ----

    fn selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        self.expect(Tok::LBrace, "{")?;
        let mut out = Vec::new();
        while *self.peek() != Tok::RBrace {
            let (line, col) = (self.toks[self.pos].line, self.toks[self.pos].col);
            let name = self.ident("IDENTIFIER")?;
            let op = match self.next() {
                Tok::Eq => MatchOp::Equal,
                Tok::Neq => MatchOp::NotEqual,
                Tok::Re => MatchOp::Regex,
                Tok::Nre => MatchOp::NotRegex,
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected("=, !=, =~ or !~"));
                }
            };
            let value = self.string("STRING")?;
            let m = Matcher::new(op, name, value).map_err(|e| ParseError {
                line,
                col,
                msg: format!("invalid matcher: {e}"),
            })?;
            out.push(m);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(Tok::RBrace, "} or ,")?;
        if out.is_empty() || out.iter().all(|m| m.matches_empty()) {
            return Err(self.err_here(
                "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
            ));
        }
        Ok(out)
    }

    /// The pipeline after a selector; stops at `unwrap` (returned) or a token that cannot
    /// start a stage.
    fn pipeline(&mut self, allow_unwrap: bool) -> Result<(Vec<Stage>, Option<Unwrap>), ParseError> {
        let mut stages = Vec::new();
        loop {
            let op = match self.peek() {
                Tok::PipeExact => Some(LineFilterOp::Contains),
                Tok::Neq => Some(LineFilterOp::NotContains),
                Tok::PipeMatch => Some(LineFilterOp::Match),
                Tok::Nre => Some(LineFilterOp::NotMatch),
                Tok::PipePattern => Some(LineFilterOp::Pattern),
                Tok::NotPattern => Some(LineFilterOp::NotPattern),
                _ => None,
            };
            if let Some(op) = op {
                self.next();
                let mut values = vec![self.string("STRING")?];
                while self.is_ident("or") && matches!(self.peek_at(1), Tok::Str(_)) {
                    self.next();
                    values.push(self.string("STRING")?);
                }
                if matches!(op, LineFilterOp::Match | LineFilterOp::NotMatch) {
                    for v in &values {
                        regex::Regex::new(v).map_err(|e| self.err_here(format!("invalid regexp {v:?}: {e}")))?;
                    }
                }
                stages.push(Stage::LineFilter { op, values });
                continue;
            }
            if *self.peek() != Tok::Pipe {
                return Ok((stages, None));
            }
            self.next();
            let kw = match self.peek() {
                Tok::Ident(s) => s.clone(),
                _ => String::new(),
            };
            match kw.as_str() {
                "json" => {
                    self.next();
                    stages.push(Stage::Json { params: self.params()? });
                }
                "logfmt" => {
                    self.next();
                    let (mut strict, mut keep_empty) = (false, false);
                    loop {
                        if self.is_ident("--strict") {
                            strict = true;
                        } else if self.is_ident("--keep-empty") {
                            keep_empty = true;
                        } else {
                            break;
                        }
                        self.next();
                    }
                    stages.push(Stage::Logfmt { strict, keep_empty, params: self.params()? });
                }
                "regexp" => {
                    self.next();
                    let re = self.string("STRING")?;
                    let compiled =
                        regex::Regex::new(&re).map_err(|e| self.err_here(format!("invalid regexp {re:?}: {e}")))?;
                    if compiled.capture_names().flatten().next().is_none() {
                        return Err(self.err_here("at least one named capture must be supplied"));
                    }
                    stages.push(Stage::Regexp(re));
                }
                "pattern" => {
                    self.next();
                    stages.push(Stage::Pattern(self.string("STRING")?));
                }
                "unpack" => {
                    self.next();
                    stages.push(Stage::Unpack);
                }
                "decolorize" => {
                    self.next();
                    stages.push(Stage::Decolorize);
                }
                "line_format" => {
                    self.next();
                    stages.push(Stage::LineFormat(self.string("STRING")?));
                }
                "label_format" => {
                    self.next();
                    let mut ops = Vec::new();
                    loop {
                        let dst = self.ident("IDENTIFIER")?;
                        self.expect(Tok::Eq, "=")?;
                        ops.push(match self.next() {
                            Tok::Ident(src) => LabelFormatOp::Rename { dst, src },
                            Tok::Str(template) => LabelFormatOp::Template { dst, template },
                            _ => {
                                self.pos -= 1;
                                return Err(self.unexpected("IDENTIFIER or STRING"));
                            }
                        });
                        if !self.eat(&Tok::Comma) {
                            break;
                        }
                    }
                    stages.push(Stage::LabelFormat(ops));
                }
                "drop" | "keep" => {
                    self.next();
                    let mut labels = Vec::new();
                    loop {
                        let name = self.ident("IDENTIFIER")?;
                        let matcher = match self.peek() {
                            Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre if matches!(self.peek_at(1), Tok::Str(_)) => {
                                let op = match self.next() {
                                    Tok::Eq => StrOp::Eq,
                                    Tok::Neq => StrOp::Neq,
                                    Tok::Re => StrOp::Re,
                                    _ => StrOp::Nre,
                                };
                                Some((op, self.string("STRING")?))
                            }
                            _ => None,
                        };
                        labels.push(NamedLabel { name, matcher });
                        if !self.eat(&Tok::Comma) {
                            break;
                        }
                    }
                    stages.push(if kw == "drop" { Stage::Drop(labels) } else { Stage::Keep(labels) });
                }
                "unwrap" => {
                    if !allow_unwrap {
                        return Err(self.err_here("syntax error: unwrap is only allowed in a range aggregation"));
                    }
                    self.next();
                    let conv = match self.peek() {
                        Tok::Ident(c) if matches!(self.peek_at(1), Tok::LParen) => match c.as_str() {
                            "duration" => UnwrapConv::Duration,
                            "duration_seconds" => UnwrapConv::DurationSeconds,
                            "bytes" => UnwrapConv::Bytes,
                            other => {
                                return Err(self.err_here(format!("syntax error: unknown unwrap conversion {other}")))
                            }
                        },
                        _ => UnwrapConv::None,
                    };
                    let label = if conv == UnwrapConv::None {
                        self.ident("IDENTIFIER")?
                    } else {
                        self.next();
                        self.expect(Tok::LParen, "(")?;
                        let l = self.ident("IDENTIFIER")?;
                        self.expect(Tok::RParen, ")")?;
                        l
                    };
                    let mut post_filters = Vec::new();
                    while *self.peek() == Tok::Pipe {
                        self.next();
                        post_filters.push(self.label_filter_or()?);
                    }
                    return Ok((stages, Some(Unwrap { label, conv, post_filters })));
                }
                _ => stages.push(Stage::LabelFilter(self.label_filter_or()?)),
            }
        }
    }

    /// `label="expression", ...` parameters of `json` and `logfmt`.
    fn params(&mut self) -> Result<Vec<(String, String)>, ParseError> {
        let mut out = Vec::new();
        while matches!(self.peek(), Tok::Ident(_)) && *self.peek_at(1) == Tok::Eq {
            let name = self.ident("IDENTIFIER")?;
            self.next();
            let expr = match self.next() {
                Tok::Str(s) => s,
                Tok::Ident(s) => s,
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected("STRING"));
                }
            };
            out.push((name, expr));
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        Ok(out)
    }

    fn label_filter_or(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_and()?;
        while self.is_ident("or") {
            self.next();
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_primary()?;
        loop {
            if self.is_ident("and") || *self.peek() == Tok::Comma {
                self.next();
            } else if !(matches!(self.peek(), Tok::Ident(s) if s != "or" && s != "and")
                && matches!(
                    self.peek_at(1),
                    Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre | Tok::EqEq | Tok::Gt | Tok::Gte | Tok::Lt | Tok::Lte
                ))
            {
                break;
            }
            let rhs = self.label_filter_primary()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_here(format!("the query nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn label_filter_primary(&mut self) -> Result<LabelFilter, ParseError> {
        if self.eat(&Tok::LParen) {
            self.enter()?;
            let f = self.label_filter_or()?;
            self.depth -= 1;
            self.expect(Tok::RParen, ")")?;
            return Ok(f);
        }
        let name = self.ident("IDENTIFIER")?;
        let op = self.next();
        let value = self.next();
        let cmp = |op: &Tok| match op {
            Tok::EqEq | Tok::Eq => Some(CmpOp::Eq),
            Tok::Neq => Some(CmpOp::Neq),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Gte => Some(CmpOp::Gte),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Lte => Some(CmpOp::Lte),
            _ => None,
        };
        match (&op, value) {
            (Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre, Tok::Str(value)) => {
                let op = match op {
                    Tok::Eq => StrOp::Eq,
                    Tok::Neq => StrOp::Neq,
                    Tok::Re => StrOp::Re,
                    _ => StrOp::Nre,
                };
                if matches!(op, StrOp::Re | StrOp::Nre) {
                    regex::Regex::new(&value).map_err(|e| self.err_here(format!("invalid regexp {value:?}: {e}")))?;
                }
                Ok(LabelFilter::Str { name, op, value })
            }
            (o, Tok::Number(n)) if cmp(o).is_some() => {
                Ok(LabelFilter::Cmp { name, op: cmp(o).unwrap_or(CmpOp::Eq), value: CmpValue::Number(n) })
            }
            (o, Tok::Duration(d)) if cmp(o).is_some() => {
                Ok(LabelFilter::Cmp { name, op: cmp(o).unwrap_or(CmpOp::Eq), value: CmpValue::Duration(d) })
            }
            (o, Tok::Bytes(b)) if cmp(o).is_some() => {
                Ok(LabelFilter::Cmp { name, op: cmp(o).unwrap_or(CmpOp::Eq), value: CmpValue::Bytes(b) })
            }
            _ => {
                self.pos -= 1;
                Err(self.unexpected(
                    "a label filter: a string, number, duration or bytes value after =, !=, =~, !~, ==, >, >=, <, <=",
                ))
            }
        }
    }

    fn log_expr(&mut self, allow_unwrap: bool) -> Result<(LogExpr, Option<Unwrap>), ParseError> {
        let selector = self.selector()?;
        let (stages, unwrap) = self.pipeline(allow_unwrap)?;
        Ok((LogExpr { selector, stages }, unwrap))
    }

    // ---- metric queries ----

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = if self.is_ident("by") {
            false
        } else if self.is_ident("without") {
            true
        } else {
            return Ok(None);
        };
        self.next();
        Ok(Some(Grouping { without, labels: self.labels_list()? }))
    }

    fn range_agg(&mut self, op: RangeOp) -> Result<MetricExpr, ParseError> {
        self.expect(Tok::LParen, "(")?;
        let param = if op == RangeOp::QuantileOverTime {
            let q = self.number()?;
            self.expect(Tok::Comma, ",")?;
            Some(q)
        } else {
            None
        };
        // `{…} [range] | pipeline` or `{…} | pipeline [range]`, optionally in parentheses.
        let parens = self.eat(&Tok::LParen);
        let selector = self.selector()?;
        let mut range = None;
        if self.eat(&Tok::LBracket) {
            range = Some(self.duration()?);
            self.expect(Tok::RBracket, "]")?;
        }
        let (stages, unwrap) = self.pipeline(true)?;
        if parens {
            self.expect(Tok::RParen, ")")?;
        }
        if range.is_none() {
            self.expect(Tok::LBracket, "[")?;
            range = Some(self.duration()?);
            self.expect(Tok::RBracket, "]")?;
        }
        let offset = if self.is_ident("offset") {
            self.next();
            self.duration()?
        } else {
            0
        };
        self.expect(Tok::RParen, ")")?;
        let grouping = self.grouping()?;
        if op.needs_unwrap() && unwrap.is_none() {
            return Err(self.err_here(format!("invalid aggregation {op:?} without unwrap")));
        }
        if !op.needs_unwrap() && unwrap.is_some() {
            return Err(self.err_here(format!("invalid aggregation {op:?} with unwrap")));
        }
        let range = range.unwrap_or(0);
        if range <= 0 {
            return Err(self.err_here("the range must be greater than 0"));
        }
        Ok(MetricExpr::Range { op, param, log: LogExpr { selector, stages }, unwrap, range, offset, grouping })
    }

    fn vector_agg(&mut self, op: VectorOp) -> Result<MetricExpr, ParseError> {
        let mut grouping = self.grouping()?;
        self.expect(Tok::LParen, "(")?;
        let param = if matches!(op, VectorOp::Topk | VectorOp::Bottomk) {
            let k = self.number()?;
            self.expect(Tok::Comma, ",")?;
            Some(k)
        } else {
            None
        };
        let inner = match self.expr(0)? {
            Node::Metric(m) => m,
            Node::Log(_) => return Err(self.err_here("syntax error: a vector aggregation needs a metric query")),
        };
        self.expect(Tok::RParen, ")")?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        Ok(MetricExpr::Vector { op, param, grouping, inner: Box::new(inner) })
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        self.enter()?;
        let node = self.primary_inner();
        self.depth -= 1;
        node
    }

    fn primary_inner(&mut self) -> Result<Node, ParseError> {
        match self.peek().clone() {
            Tok::LBrace => Ok(Node::Log(self.log_expr(false)?.0)),
            Tok::LParen => {
                self.next();
                let e = self.expr(0)?;
                self.expect(Tok::RParen, ")")?;
                Ok(e)
            }
            Tok::Number(n) => {
                self.next();
                Ok(Node::Metric(MetricExpr::Literal(n)))
            }
            Tok::Sub => {
                self.next();
                match self.primary()? {
                    Node::Metric(MetricExpr::Literal(n)) => Ok(Node::Metric(MetricExpr::Literal(-n))),
                    Node::Metric(m) => Ok(Node::Metric(MetricExpr::Binary {
                        op: BinOp::Mul,
                        bool_modifier: false,
                        matching: VectorMatching::default(),
                        lhs: Box::new(MetricExpr::Literal(-1.0)),
                        rhs: Box::new(m),
                    })),
                    Node::Log(_) => Err(self.err_here("syntax error: unexpected log query")),
                }
            }
            Tok::Ident(name) => {
                if let Some(op) = RangeOp::parse(&name) {
                    self.next();
                    return Ok(Node::Metric(self.range_agg(op)?));
                }
                if let Some(op) = VectorOp::parse(&name) {
                    self.next();
                    return Ok(Node::Metric(self.vector_agg(op)?));
                }
                match name.as_str() {
                    "vector" => {
                        self.next();
                        self.expect(Tok::LParen, "(")?;
                        let n = self.number()?;
                        self.expect(Tok::RParen, ")")?;
                        Ok(Node::Metric(MetricExpr::VectorLiteral(n)))
                    }
                    "label_replace" => {
                        self.next();
                        self.expect(Tok::LParen, "(")?;
                        let inner = match self.expr(0)? {
                            Node::Metric(m) => m,
                            Node::Log(_) => {
                                return Err(self.err_here("syntax error: label_replace needs a metric query"))
                            }
                        };
                        let mut args = Vec::new();
                        for _ in 0..4 {
                            self.expect(Tok::Comma, ",")?;
                            args.push(self.string("STRING")?);
                        }
                        self.expect(Tok::RParen, ")")?;
                        regex::Regex::new(&args[3])
                            .map_err(|e| self.err_here(format!("invalid regexp {:?}: {e}", args[3])))?;
                        let mut a = args.into_iter();
                        let (dst, replacement, src, regex) = (
                            a.next().unwrap_or_default(),
                            a.next().unwrap_or_default(),
                            a.next().unwrap_or_default(),
                            a.next().unwrap_or_default(),
                        );
                        Ok(Node::Metric(MetricExpr::LabelReplace {
                            inner: Box::new(inner),
                            dst,
                            replacement,
                            src,
                            regex,
                        }))
                    }
                    _ => Err(self.err_here(format!("syntax error: unexpected IDENTIFIER {name}"))),
                }
            }
            _ => Err(self.unexpected("a stream selector, a metric query or a number")),
        }
    }

    fn binop(&self) -> Option<(BinOp, u8)> {
        Some(match self.peek() {
            Tok::Ident(s) if s == "or" => (BinOp::Or, 1),
            Tok::Ident(s) if s == "and" => (BinOp::And, 2),
            Tok::Ident(s) if s == "unless" => (BinOp::Unless, 2),
            Tok::EqEq => (BinOp::Eq, 3),
            Tok::Neq => (BinOp::Neq, 3),
            Tok::Gt => (BinOp::Gt, 3),
            Tok::Gte => (BinOp::Gte, 3),
            Tok::Lt => (BinOp::Lt, 3),
            Tok::Lte => (BinOp::Lte, 3),
            Tok::Add => (BinOp::Add, 4),
            Tok::Sub => (BinOp::Sub, 4),
            Tok::Mul => (BinOp::Mul, 5),
            Tok::Div => (BinOp::Div, 5),
            Tok::Mod => (BinOp::Mod, 5),
            Tok::Pow => (BinOp::Pow, 6),
            _ => return None,
        })
    }

    fn labels_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LParen, "(")?;
        let mut out = Vec::new();
        while let Tok::Ident(l) = self.peek().clone() {
            self.next();
            out.push(l);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(Tok::RParen, ")")?;
        Ok(out)
    }

    fn expr(&mut self, min_prec: u8) -> Result<Node, ParseError> {
        let mut lhs = self.primary()?;
        while let Some((op, prec)) = self.binop() {
            if prec < min_prec {
                break;
            }
            self.next();
            let bool_modifier = if self.is_ident("bool") {
                self.next();
                true
            } else {
                false
            };
            let mut matching = VectorMatching::default();
            if self.is_ident("on") || self.is_ident("ignoring") {
                let on = self.is_ident("on");
                self.next();
                matching.on = Some((on, self.labels_list()?));
                if self.is_ident("group_left") || self.is_ident("group_right") {
                    let left = self.is_ident("group_left");
                    self.next();
                    let labels = if *self.peek() == Tok::LParen { self.labels_list()? } else { Vec::new() };
                    matching.group = Some((left, labels));
                }
            }
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            let (Node::Metric(l), Node::Metric(r)) = (lhs, rhs) else {
                return Err(self.err_here("syntax error: binary operations need metric queries on both sides"));
            };
            lhs = Node::Metric(MetricExpr::Binary { op, bool_modifier, matching, lhs: Box::new(l), rhs: Box::new(r) });
        }
        Ok(lhs)
    }
}
