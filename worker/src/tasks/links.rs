//! What an HTML page links to, for `walk site`: the `href` of `<a>` and `<area>` (pages,
//! followed), and of `<link>`, the `src` of `<img>` and `<script>` (resources, checked
//! but not followed), resolved against the page's URL or its `<base href>`.
//!
//! The page is read by html5ever's tokenizer, the HTML standard's own: character
//! references (`&amp;`) decoded, comments skipped, the text of `<script>`, `<style>`,
//! `<textarea>` and their kin read as text, never as tags. No tree is built: the time
//! is linear in the page, and the memory is the page and its links.

use std::cell::RefCell;
use std::collections::HashSet;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use url::Url;

/// What a link is to the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A page, whose own links are followed in turn (`<a href>`, `<area href>`).
    Page,
    /// A resource a page uses, fetched to check it, never read for links (`<link href>`,
    /// `<img src>`, `<script src>`).
    Resource,
}

/// The links of `html`, a page at `url`: each http(s) URL once, in the order of the
/// page, without its fragment, without a user name or password. A page link that is
/// also a resource counts as a page. Links to other schemes (`mailto:`, `javascript:`)
/// and links that are not URLs are left out.
pub fn links(html: &[u8], url: &Url) -> Vec<(Url, Kind)> {
    let text = String::from_utf8_lossy(html);
    let sink = Sink::default();
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(&text));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let found = tokenizer.sink.found.into_inner();
    let base = found
        .base
        .as_deref()
        .and_then(|b| url.join(b).ok())
        .unwrap_or_else(|| url.clone());

    let mut links: Vec<(Url, Kind)> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = Default::default();
    let mut not_urls: HashSet<&str> = HashSet::new();
    for (raw, kind) in &found.links {
        let Some(link) = resolve(&base, raw) else {
            not_urls.insert(raw);
            continue;
        };
        match at.get(link.as_str()) {
            Some(&i) => {
                if *kind == Kind::Page {
                    links[i].1 = Kind::Page;
                }
            }
            None => {
                at.insert(link.as_str().to_string(), links.len());
                links.push((link, *kind));
            }
        }
    }
    links
}

/// `raw` resolved against `base`, if it is an http(s) URL: no fragment, no credentials.
pub(crate) fn resolve(base: &Url, raw: &str) -> Option<Url> {
    let mut link = base.join(raw.trim()).ok()?;
    if !matches!(link.scheme(), "http" | "https") || link.host_str().is_none_or(str::is_empty) {
        return None;
    }
    link.set_fragment(None);
    let _ = link.set_username("");
    let _ = link.set_password(None);
    Some(link)
}

/// What the tokenizer found so far.
#[derive(Default)]
struct Found {
    /// The first `<base href>`.
    base: Option<String>,
    links: Vec<(String, Kind)>,
}

#[derive(Default)]
struct Sink {
    found: RefCell<Found>,
}

impl Sink {
    fn start_tag(&self, tag: &Tag) {
        let attr = |name: &str| {
            tag.attrs
                .iter()
                .find(|a| a.name.ns.is_empty() && &*a.name.local == name)
                .map(|a| a.value.to_string())
        };
        let mut found = self.found.borrow_mut();
        let link = match &*tag.name {
            "a" | "area" => attr("href").map(|h| (h, Kind::Page)),
            "img" | "script" => attr("src").map(|s| (s, Kind::Resource)),
            "link" => {
                // Hints that name a server, not a resource to fetch.
                let hint = attr("rel").is_some_and(|rel| {
                    rel.split_ascii_whitespace().all(|r| {
                        r.eq_ignore_ascii_case("preconnect")
                            || r.eq_ignore_ascii_case("dns-prefetch")
                    })
                });
                attr("href").filter(|_| !hint).map(|h| (h, Kind::Resource))
            }
            "base" => {
                if found.base.is_none() {
                    found.base = attr("href");
                }
                None
            }
            _ => None,
        };
        if let Some((target, kind)) = link {
            if !target.trim().is_empty() {
                found.links.push((target, kind));
            }
        }
    }
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else {
            return TokenSinkResult::Continue;
        };
        if tag.kind != TagKind::StartTag {
            return TokenSinkResult::Continue;
        }
        self.start_tag(&tag);
        // What the tree builder would tell the tokenizer: the text of these elements is
        // text up to their end tag (`<noscript>` is read as markup: a walk runs no
        // script, so its links are the ones a reader without scripts follows).
        match &*tag.name {
            _ if tag.self_closing => TokenSinkResult::Continue,
            "script" => TokenSinkResult::RawData(RawKind::ScriptData),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" => {
                TokenSinkResult::RawData(RawKind::Rawtext)
            }
            "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
            "plaintext" => TokenSinkResult::Plaintext,
            _ => TokenSinkResult::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(html: &str) -> Vec<(String, Kind)> {
        let page = Url::parse("https://example.test/docs/index.html").unwrap();
        links(html.as_bytes(), &page)
            .into_iter()
            .map(|(u, k)| (u.to_string(), k))
            .collect()
    }

    fn page(u: &str) -> (String, Kind) {
        (u.to_string(), Kind::Page)
    }

    fn resource(u: &str) -> (String, Kind) {
        (u.to_string(), Kind::Resource)
    }

    #[test]
    fn pages_and_resources_are_resolved_against_the_page() {
        let found = read(
            r#"<!doctype html><html><head>
            <link rel="stylesheet" href="/style.css"><link rel="preconnect" href="https://cdn.test">
            <script src="app.js"></script></head>
            <body><a href="a.html#top">A</a> <A HREF='../b?x=1&amp;y=2'>B</A>
            <img src=logo.png alt=x><map><area href="/c"></map>
            <a href="mailto:x@example.test">mail</a><a href="javascript:void(0)">js</a>
            <a href="http://user:pw@other.test:8080/d">D</a><a>no href</a><a href="">empty</a>
            <a href="a.html">A again</a></body></html>"#,
        );
        assert_eq!(
            found,
            [
                resource("https://example.test/style.css"),
                resource("https://example.test/docs/app.js"),
                page("https://example.test/docs/a.html"),
                page("https://example.test/b?x=1&y=2"),
                resource("https://example.test/docs/logo.png"),
                page("https://example.test/c"),
                page("http://other.test:8080/d"),
            ]
        );
    }

    #[test]
    fn scripts_styles_and_comments_hold_no_links_and_base_is_obeyed() {
        let found = read(
            r#"<base href="https://example.test/v2/"><!-- <a href="/commented"> -->
            <script>document.write('<a href="/scripted">')</script>
            <style>a::after { content: '<a href="/styled">' }</style>
            <title><a href="/titled"></title><textarea><a href="/typed"></textarea>
            <noscript><a href="/plain">without scripts</a></noscript>
            <a href="guide">guide</a><img src="guide">"#,
        );
        assert_eq!(
            found,
            [
                page("https://example.test/plain"),
                page("https://example.test/v2/guide"),
            ]
        );
    }

    #[test]
    fn broken_markup_and_text_that_is_not_utf8_are_read_anyway() {
        let mut html = b"<a href=\"/one\">caf\xe9</a><a href=/two<a href='/three".to_vec();
        html.extend_from_slice(b"<a href=\"http://[::1\">bad</a>");
        let found = links(&html, &Url::parse("http://example.test/").unwrap());
        assert_eq!(found[0].0.as_str(), "http://example.test/one");
        assert!(found.iter().all(|(u, _)| u.scheme() == "http"));
    }

    #[test]
    fn a_page_of_many_links_is_read_in_time_linear_in_its_size() {
        let link = "<p><a href=\"/page/N\">a page</a> and <img src=\"/img/N.png\"></p>\n";
        let small: String = (0..1_000)
            .map(|i| link.replace('N', &i.to_string()))
            .collect();
        let large: String = (0..16_000)
            .map(|i| link.replace('N', &i.to_string()))
            .collect();
        let url = Url::parse("http://example.test/").unwrap();
        let time = |html: &str| {
            let started = std::time::Instant::now();
            let n = links(html.as_bytes(), &url).len();
            (started.elapsed(), n)
        };
        let _ = time(&small);
        let (t_small, n_small) = time(&small);
        let (t_large, n_large) = time(&large);
        assert_eq!((n_small, n_large), (2_000, 32_000));
        // 16 times the page: well under 16 × 8 the time (a quadratic reader would take 256×).
        assert!(
            t_large < t_small * 16 * 8 + std::time::Duration::from_millis(50),
            "{t_small:?} then {t_large:?}"
        );
    }
}
