//! The answer of a translated request on its way back (`decide::Translation`):
//! a stream translated event by event as its bytes arrive (split anywhere:
//! `sse::Parser` frames it, the translator keeps only the open blocks and the
//! usage), a JSON answer translated whole once it has ended, and an error in
//! the client's shape. The wire shapes are `tollgate_translate`'s.

use tollgate_translate::{errors, from_anthropic, to_anthropic, Event, Usage};

use crate::decide::Translation;
use crate::meter::MAX_JSON_BYTES;
use crate::sse::{self, Parser};

#[derive(Debug)]
enum Stream {
    /// An Anthropic stream becoming OpenAI chunks.
    ToOpenAi(to_anthropic::Stream),
    /// An OpenAI stream becoming Messages events.
    ToAnthropic(from_anthropic::Stream),
}

#[derive(Debug)]
pub struct Translator {
    translation: Translation,
    /// The model name the client asked for, which its answer names.
    model: String,
    created_s: u64,
    status: u16,
    event_stream: bool,
    parser: Parser,
    stream: Option<Stream>,
    json: Vec<u8>,
    /// A JSON answer too long to translate passes as it came.
    json_too_long: bool,
    /// The usage of a JSON answer, as translated.
    answered: Option<Usage>,
}

impl Translator {
    pub fn new(translation: Translation, model: &str, created_s: u64) -> Option<Translator> {
        (translation != Translation::None).then(|| Translator {
            translation,
            model: model.to_string(),
            created_s,
            status: 0,
            event_stream: false,
            parser: Parser::default(),
            stream: None,
            json: Vec::new(),
            json_too_long: false,
            answered: None,
        })
    }

    /// Whether the meter reads the translated answer (an Anthropic provider's
    /// answer turned into OpenAI's) rather than the provider's own.
    pub fn reads_translated(&self) -> bool {
        self.translation == Translation::ToAnthropic
    }

    pub fn on_headers(&mut self, status: u16, content_type: &[u8]) {
        self.status = status;
        self.event_stream = (200..300).contains(&status)
            && content_type
                .get(..17)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"text/event-stream"));
        if self.event_stream {
            self.stream = Some(match self.translation {
                Translation::ToAnthropic => {
                    Stream::ToOpenAi(to_anthropic::Stream::new(&self.model, self.created_s))
                }
                _ => Stream::ToAnthropic(from_anthropic::Stream::new(&self.model)),
            });
        }
    }

    /// One chunk of the upstream's answer; returns what the client gets for it.
    pub fn push(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        if let Some(stream) = self.stream.as_mut() {
            let mut raws = self.parser.push(chunk);
            if end_of_stream {
                raws.extend(self.parser.finish());
            }
            let mut out = Vec::new();
            for raw in raws {
                if let Some(event) = &raw.event {
                    out.extend(translate_event(stream, event));
                }
            }
            return out;
        }
        if self.json_too_long {
            return chunk.to_vec();
        }
        if self.json.len() + chunk.len() > MAX_JSON_BYTES {
            self.json_too_long = true;
            let mut out = std::mem::take(&mut self.json);
            out.extend_from_slice(chunk);
            return out;
        }
        self.json.extend_from_slice(chunk);
        if !end_of_stream {
            return Vec::new();
        }
        let json = std::mem::take(&mut self.json);
        self.answer(&json)
    }

    /// The usage the answer carried, cache counts apart, when the provider
    /// reported it.
    pub fn usage(&self) -> Option<Usage> {
        match &self.stream {
            Some(Stream::ToOpenAi(s)) => s.started().then(|| s.usage()),
            Some(Stream::ToAnthropic(s)) => s.usage(),
            None => self.answered,
        }
    }

    fn answer(&mut self, json: &[u8]) -> Vec<u8> {
        let ok = (200..300).contains(&self.status);
        let translated = match (self.translation, ok) {
            (Translation::ToAnthropic, true) => {
                to_anthropic::response(json, &self.model, self.created_s).map(|(b, u)| {
                    self.answered = Some(u);
                    b
                })
            }
            (_, true) => from_anthropic::response(json, &self.model).map(|(b, u)| {
                self.answered = Some(u);
                b
            }),
            (Translation::ToAnthropic, false) => Some(
                errors::openai_from_anthropic(self.status, json)
                    .to_string()
                    .into_bytes(),
            ),
            (_, false) => Some(
                errors::anthropic_from_openai(self.status, json)
                    .to_string()
                    .into_bytes(),
            ),
        };
        // An answer that does not parse passes as it came: its bytes are
        // the provider's, and the usage record says what was counted.
        translated.unwrap_or_else(|| json.to_vec())
    }
}

fn translate_event(stream: &mut Stream, event: &sse::Event) -> Vec<u8> {
    let event = Event {
        name: event.event.as_deref(),
        data: &event.data,
    };
    match stream {
        Stream::ToOpenAi(s) => s.on_event(event),
        Stream::ToAnthropic(s) => s.on_event(event),
    }
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
