//! How Toxiproxy's Go JSON decoding reads a request body, and the error texts it gives, so that
//! a client comparing `bad request body: ...` messages sees the same ones: a body is the first
//! JSON value in it (what follows is ignored, as `json.Decoder.Decode` ignores it), an empty
//! body is `EOF`, a cut-off one `unexpected EOF`, and a syntax error reads as Go's scanner words
//! it (`invalid character 'n' looking for beginning of object key string`).

use serde_json::Value;

/// The first JSON value of `body`, or Go's error text.
pub(crate) fn first_value(body: &[u8]) -> Result<Value, String> {
    let mut s = Scanner { b: body, i: 0 };
    s.skip_space();
    if s.i == body.len() {
        return Err("EOF".to_owned());
    }
    let start = s.i;
    s.value()?;
    serde_json::from_slice(&body[start..s.i]).map_err(|e| e.to_string())
}

/// Go's name for the kind of a JSON value in a type error (`cannot unmarshal string ...`).
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's type error for a value that does not fit its field, e.g.
/// `json: cannot unmarshal string into Go struct field Proxy.enabled of type bool`.
pub(crate) fn field_error(value: &str, strukt: &str, field: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {value} into Go struct field {strukt}.{field} of type {go_type}"
    )
}

/// Go's type error for a whole body of the wrong kind, e.g.
/// `json: cannot unmarshal array into Go value of type toxiproxy.Proxy`.
pub(crate) fn value_error(v: &Value, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go value of type {go_type}",
        kind(v)
    )
}

/// Go's `quoteChar`: a byte shown in single quotes, escaped as Go quotes strings.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        0x07 => r"'\a'".to_owned(),
        0x08 => r"'\b'".to_owned(),
        0x0c => r"'\f'".to_owned(),
        b'\n' => r"'\n'".to_owned(),
        b'\r' => r"'\r'".to_owned(),
        b'\t' => r"'\t'".to_owned(),
        0x0b => r"'\v'".to_owned(),
        b'\\' => r"'\\'".to_owned(),
        0x20..=0x7e => format!("'{}'", c as char),
        0x00..=0x1f | 0x7f => format!("'\\x{c:02x}'"),
        0x80..=0xa0 | 0xad => format!("'\\u{c:04x}'"),
        _ => format!("'{}'", char::from(c)),
    }
}

/// A scanner with the states and messages of Go's `encoding/json` scanner; it only finds where
/// the first value ends, or the first error.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

type Scan = Result<(), String>;

impl Scanner<'_> {
    fn skip_space(&mut self) {
        while self
            .b
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        {
            self.i += 1;
        }
    }

    fn next(&mut self) -> Result<u8, String> {
        let c = *self.b.get(self.i).ok_or("unexpected EOF")?;
        self.i += 1;
        Ok(c)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn invalid(c: u8, context: &str) -> String {
        format!("invalid character {} {context}", quote_char(c))
    }

    fn value(&mut self) -> Scan {
        self.skip_space();
        match self.next()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string(),
            b'-' => self.number(b'-'),
            c @ b'0'..=b'9' => self.number(c),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            c => Err(Self::invalid(c, "looking for beginning of value")),
        }
    }

    fn object(&mut self) -> Scan {
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            match self.next()? {
                b'"' => self.string()?,
                c => {
                    return Err(Self::invalid(
                        c,
                        "looking for beginning of object key string",
                    ))
                }
            }
            self.skip_space();
            match self.next()? {
                b':' => {}
                c => return Err(Self::invalid(c, "after object key")),
            }
            self.value()?;
            self.skip_space();
            match self.next()? {
                b',' => self.skip_space(),
                b'}' => return Ok(()),
                c => return Err(Self::invalid(c, "after object key:value pair")),
            }
        }
    }

    fn array(&mut self) -> Scan {
        self.skip_space();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value()?;
            self.skip_space();
            match self.next()? {
                b',' => {}
                b']' => return Ok(()),
                c => return Err(Self::invalid(c, "after array element")),
            }
        }
    }

    fn string(&mut self) -> Scan {
        loop {
            match self.next()? {
                b'"' => return Ok(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        for _ in 0..4 {
                            let c = self.next()?;
                            if !c.is_ascii_hexdigit() {
                                return Err(Self::invalid(
                                    c,
                                    r"in \u hexadecimal character escape",
                                ));
                            }
                        }
                    }
                    c => return Err(Self::invalid(c, "in string escape code")),
                },
                c if c < 0x20 => return Err(Self::invalid(c, "in string literal")),
                _ => {}
            }
        }
    }

    /// A number whose first byte was `first`. At the end of the body a number that has its
    /// digits is complete (Go's decoder ends a top-level number there).
    fn number(&mut self, first: u8) -> Scan {
        let mut c = first;
        if c == b'-' {
            c = self.next()?;
            if !c.is_ascii_digit() {
                return Err(Self::invalid(c, "in numeric literal"));
            }
        }
        if c != b'0' {
            self.digits();
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            let c = self.next()?;
            if !c.is_ascii_digit() {
                return Err(Self::invalid(c, "after decimal point in numeric literal"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            let mut c = self.next()?;
            if c == b'+' || c == b'-' {
                c = self.next()?;
            }
            if !c.is_ascii_digit() {
                return Err(Self::invalid(c, "in exponent of numeric literal"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &str) -> Scan {
        for expected in word.bytes().skip(1) {
            let c = self.next()?;
            if c != expected {
                return Err(Self::invalid(
                    c,
                    &format!("in literal {word} (expecting {})", quote_char(expected)),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        first_value(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn errors_read_as_go_s() {
        assert_eq!(err(""), "EOF");
        assert_eq!(err(" \n"), "EOF");
        assert_eq!(err("{"), "unexpected EOF");
        assert_eq!(err(r#"{"a":"#), "unexpected EOF");
        assert_eq!(
            err("{not json"),
            "invalid character 'n' looking for beginning of object key string"
        );
        assert_eq!(
            err("nonsense"),
            "invalid character 'o' in literal null (expecting 'u')"
        );
        assert_eq!(
            err("[1,]"),
            "invalid character ']' looking for beginning of value"
        );
        assert_eq!(err(r#"{"a" 1}"#), "invalid character '1' after object key");
        assert_eq!(
            err(r#"{"a":1 "b":2}"#),
            "invalid character '\"' after object key:value pair"
        );
        assert_eq!(err("[1 2]"), "invalid character '2' after array element");
        assert_eq!(err("-x"), "invalid character 'x' in numeric literal");
        assert_eq!(
            err("1.x"),
            "invalid character 'x' after decimal point in numeric literal"
        );
        assert_eq!(
            err(r#""\q""#),
            "invalid character 'q' in string escape code"
        );
        assert_eq!(err("\"a\nb\""), r"invalid character '\n' in string literal");
        assert_eq!(
            err("'x'"),
            r"invalid character '\'' looking for beginning of value"
        );
    }

    #[test]
    fn the_first_value_is_taken_and_the_rest_ignored() {
        assert_eq!(
            first_value(br#" {"a":1} trailing"#).expect("value"),
            serde_json::json!({"a": 1})
        );
        assert_eq!(first_value(b"12").expect("value"), serde_json::json!(12));
        assert_eq!(first_value(b"null").expect("value"), Value::Null);
    }
}
