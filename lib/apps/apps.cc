#include "apps/apps.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace tcpterm::apps {

// ------------------------------------------------------------------ echo ---
void Echo::pump(stack::Stream& s) {
  s.forward_to_send(s.readable());
  if ((s.app().flags & kPeerFin) && s.readable() == 0) s.close();
}

// ------------------------------------------------------------------ http ---
namespace {

// ASCII only (HTTP field names and tokens are ASCII): no locale lookups.
constexpr char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c + ('a' - 'A')) : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
  return v;
}

// Does a comma-separated header value contain `token` (case-insensitive)?
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t c = value.find(',');
    if (iequals(trim(value.substr(0, c)), token)) return true;
    if (c == std::string_view::npos) break;
    value.remove_prefix(c + 1);
  }
  return false;
}

// A field name already checked to be tchars, against a lower-case name of
// letters and '-' (of its length): OR-ing 0x20 lower-cases a letter, leaves
// '-' and the digits as they are, and maps no other tchar onto a letter or
// '-' ('^' goes to '~'), so the comparison is exact without a per-byte
// branch.  Eight bytes at a time.
template <size_t N>
bool name_is(const char* n, const char (&lower_name)[N]) {
  constexpr size_t len = N - 1;
  auto word_is = [&](size_t i, auto w) {  // the bytes [i, i + sizeof w)
    decltype(w) a, b;
    std::memcpy(&a, n + i, sizeof w);
    std::memcpy(&b, lower_name + i, sizeof w);
    return (a | decltype(w)(0x2020202020202020ull)) == b;
  };
  if constexpr (len >= 8) {  // whole words, the last one overlapping the one before
    for (size_t i = 0; i + 8 < len; i += 8)
      if (!word_is(i, uint64_t{})) return false;
    return word_is(len - 8, uint64_t{});
  } else if constexpr (len >= 4) {
    return word_is(0, uint32_t{}) && word_is(len - 4, uint32_t{});
  } else {
    for (size_t i = 0; i < len; i++)
      if ((n[i] | 0x20) != lower_name[i]) return false;
    return true;
  }
}

// The first CR LF at or after p, or null if none lies before e.  Eight bytes
// at a time while a whole word and the byte after it are in the buffer: the
// lowest byte of x flagged by (x - 0x01..) & ~x & 0x80.. is its first zero,
// the first CR of the word (later flags may be false, never an earlier one).
const char* find_crlf(const char* p, const char* e) {
  while (e - p >= 9) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    uint64_t x = w ^ 0x0d0d0d0d0d0d0d0dull;
    uint64_t m = (x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull;
    if (!m) {
      p += 8;
      continue;
    }
    const char* c = p + (__builtin_ctzll(m) >> 3);
    if (c[1] == '\n') return c;
    p = c + 1;  // a CR alone: not a line end
  }
  for (; p + 1 < e; p++)
    if (p[0] == '\r' && p[1] == '\n') return p;
  return nullptr;
}

// RFC 9110 5.6.2 tchar, as a table.
constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; c++) t[size_t(c)] = true;
  for (int c = 'a'; c <= 'z'; c++) t[size_t(c)] = t[size_t(c - 'a' + 'A')] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
bool is_tchar(char c) { return kTchar[static_cast<unsigned char>(c)]; }

// A fixed body pattern, sent in pieces.
constexpr std::string_view kPattern = "tcpterm says hello\n";
const std::array<uint8_t, 4096>& body_block() {
  static const std::array<uint8_t, 4096> b = [] {
    std::array<uint8_t, 4096> a{};
    for (size_t i = 0; i < a.size(); i++) a[i] = uint8_t(kPattern[i % kPattern.size()]);
    return a;
  }();
  return b;
}

}  // namespace

// One pass over the head, each byte looked at once: the request line,
// then each field line up to the empty line that ends the head.  Returns
// the head's length (through that empty line), 0 if the empty line has not
// arrived, -1 if the head is malformed (judged only once it is complete,
// as a head is judged whole).
long Http::parse_request(std::string_view buf, Request& r) {
  const char* const b = buf.data();
  const char* const e = b + buf.size();
  const char* p = b;
  // A malformed head is judged once it is complete (its empty line is in).
  auto bad = [&]() -> long { return buf.find("\r\n\r\n") != std::string_view::npos ? -1 : 0; };
  // Request line: method SP request-target SP HTTP/1.x CRLF (RFC 9112 3).
  const char* m = p;
  while (p < e && is_tchar(*p)) p++;
  if (p == e) return 0;
  if (p == m || *p != ' ') return bad();
  r.head_method = p - m == 4 && std::memcmp(m, "HEAD", 4) == 0;
  const char* t = ++p;
  while (p < e && !(*p <= ' ' || *p == 127)) p++;
  if (p == e) return 0;
  if (p == t || *p != ' ') return bad();
  p++;
  if (e - p < 10) return bad();
  bool v11;
  if (std::memcmp(p, "HTTP/1.1\r\n", 10) == 0) v11 = true;
  else if (std::memcmp(p, "HTTP/1.0\r\n", 10) == 0) v11 = false;
  else return bad();
  p += 10;
  bool conn_close = false, chunked = false, have_len = false;
  for (;;) {
    if (e - p < 2) return 0;
    if (p[0] == '\r' && p[1] == '\n') {  // the empty line: the head is complete
      p += 2;
      break;
    }
    // field-name ":" OWS field-value OWS CRLF (RFC 9112 5)
    const char* n = p;
    while (p < e && is_tchar(*p)) p++;
    if (p == e) return 0;
    if (p == n || *p != ':') return bad();  // includes whitespace before the colon
    size_t nlen = size_t(p - n);
    const char* v = ++p;
    p = find_crlf(p, e);
    if (!p) return 0;
    // The value without its surrounding whitespace (and a CR before the CR LF).
    const char* ve = p;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r')) ve--;
    std::string_view value(v, size_t(ve - v));
    p += 2;
    if (nlen == 10 && name_is(n, "connection")) {
      // The common value alone, else the list (RFC 9110 7.6.1).  name_is is
      // exact on any bytes for a name of letters only: OR-ing 0x20 maps no
      // byte but the letter's two cases onto a letter.
      conn_close |= value.size() == 5 ? name_is(value.data(), "close") : has_token(value, "close");
    } else if (nlen == 14 && name_is(n, "content-length")) {
      uint64_t len = 0;
      auto [q, ec] = std::from_chars(value.data(), value.data() + value.size(), len);
      if (ec != std::errc() || q != value.data() + value.size() || len > kMaxBody) return bad();
      if (have_len && len != r.content_length) return bad();
      have_len = true;
      r.content_length = len;
    } else if (nlen == 17 && name_is(n, "transfer-encoding")) {
      chunked = true;
    }
  }
  if (chunked) return -1;  // not supported: 400 (documented)
  // HTTP/1.0 keep-alive is not offered: the appliance closes first.
  r.keep_alive = v11 && !conn_close;
  return long(p - b);
}

bool Http::parse_head(std::string_view head, Request& r) {
  return parse_request(head, r) == long(head.size());
}

Http::Http(uint64_t body_len, Close close) : body_len_(body_len), close_(close) {
  auto head = [&](const char* status, uint64_t len, bool close) {
    return std::string("HTTP/1.1 ") + status + "\r\nServer: tcpterm\r\nContent-Type: text/plain\r\n" +
           "Content-Length: " + std::to_string(len) + "\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n";
  };
  head_keep_ = head("200 OK", body_len, false);
  head_close_ = head("200 OK", body_len, true);
  head_bad_ = head("400 Bad Request", 0, true);
  if (body_len <= kWholeMax) {
    // The body is the pattern from its start, as pump() sends it in pieces.
    std::string body(reinterpret_cast<const char*>(body_block().data()), size_t(body_len));
    whole_keep_ = head_keep_ + body;
    whole_close_ = head_close_ + body;
  }
}

bool Http::start_response(stack::Stream& s, int status, bool keep_alive, bool head_only) {
  const std::string& h = status != 200 ? head_bad_ : keep_alive ? head_keep_ : head_close_;
  if (s.send_space() < h.size()) return false;
  s.send(std::span(reinterpret_cast<const uint8_t*>(h.data()), h.size()));
  auto& st = s.app();
  st.a = head_only || status != 200 ? 0 : body_len_;
  if (!keep_alive || status != 200) st.flags |= kCloseAfter;
  return true;
}

void Http::pump(stack::Stream& s) {
  auto& st = s.app();  // a: response body bytes left; b: request body bytes to drop
  for (;;) {
    if (!s.alive()) return;
    // 1. Finish the response in progress.
    while (st.a > 0) {
      size_t room = s.send_space();
      if (room == 0) return;  // on_writable resumes
      const auto& blk = body_block();
      size_t k = std::min<uint64_t>({st.a, room, blk.size()});
      // Keep the pattern continuous across pieces.
      size_t phase = size_t((body_len_ - st.a) % kPattern.size());
      size_t sent = s.send(std::span(blk.data() + phase, std::min(k, blk.size() - phase)));
      if (sent == 0) return;
      st.a -= sent;
    }
    if (st.flags & kCloseAfter) {
      s.consume(s.readable());
      s.close();
      return;
    }
    // 2. Drop a request body.
    if (st.b > 0) {
      size_t k = std::min<uint64_t>(st.b, s.readable());
      s.consume(k);
      st.b -= uint32_t(k);
      if (st.b > 0) return;
    }
    // 3. The next request head.
    size_t avail = s.readable();
    if (avail == 0) {
      if (st.flags & kPeerFin) s.close();
      return;
    }
    // The head in place when its bytes lie in one chunk (the common case:
    // a request in one segment), else copied out.
    uint8_t buf[kMaxHeader];
    std::span<const uint8_t> in = s.peek_view(buf, std::min(avail, kMaxHeader));
    std::string_view v(reinterpret_cast<const char*>(in.data()), in.size());
    const size_t n = v.size();
    Request r;
    long head = parse_request(v, r);
    if (head == 0) {
      if (n < kMaxHeader && !(st.flags & kPeerFin)) return;  // wait for the rest
      if (n < kMaxHeader) {  // the peer closed mid-request
        s.consume(avail);
        s.close();
        return;
      }
    }
    if (head <= 0) {
      bad_++;
      s.consume(s.readable());
      if (!start_response(s, 400, false, false)) s.abort();
      continue;
    }
    bool keep = close_ == Close::Always ? false : close_ == Close::Never ? true : r.keep_alive;
    const std::string& whole = keep ? whole_keep_ : whole_close_;
    if (!r.head_method && !whole.empty() && s.send_space() >= whole.size()) {
      // The common case in one send: head and a small body together.  The
      // request is taken first: read in place from its segment, it is then
      // never copied (stack/stream.h).
      s.consume(size_t(head));
      // Lent, not copied: whole_keep_ and whole_close_ are built once and
      // live as long as this application (tcp::send_lent).
      s.send_lent(std::span(reinterpret_cast<const uint8_t*>(whole.data()), whole.size()));
      st.a = 0;
      if (!keep) st.flags |= kCloseAfter;
    } else if (start_response(s, 200, keep, r.head_method)) {
      s.consume(size_t(head));
    } else {
      return;  // no room yet
    }
    requests_++;
    st.b = uint32_t(std::min<uint64_t>(r.content_length, 0xffffffffu));
  }
}

// --------------------------------------------------------------- factory ---
std::unique_ptr<stack::App> make_app(std::string_view name, const Params& params,
                                     std::string& err) {
  auto no_params = [&](std::string_view app) {
    if (params.empty()) return true;
    err = std::string(app) + " takes no parameters (got '" + params.begin()->first + "')";
    return false;
  };
  if (name == "echo") return no_params(name) ? std::make_unique<Echo>() : nullptr;
  if (name == "discard") {
    bool on_open = false;
    for (auto& [k, v] : params) {
      if (k != "close" || (v != "open" && v != "peer")) {
        err = "discard: unknown parameter '" + k + "=" + v + "' (known: close=open|peer)";
        return nullptr;
      }
      on_open = v == "open";
    }
    return std::make_unique<Discard>(on_open);
  }
  if (name == "http") {
    uint64_t body = 64;
    Http::Close close = Http::Close::Auto;
    for (auto& [k, v] : params) {
      if (k == "body") {
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), body);
        if (ec != std::errc() || p != v.data() + v.size() || body > Http::kMaxBody) {
          err = "http: body must be a byte count up to 1 GiB, got '" + v + "'";
          return nullptr;
        }
      } else if (k == "close") {
        if (v == "auto") close = Http::Close::Auto;
        else if (v == "always") close = Http::Close::Always;
        else if (v == "never") close = Http::Close::Never;
        else {
          err = "http: close must be auto, always or never, got '" + v + "'";
          return nullptr;
        }
      } else {
        err = "http: unknown parameter '" + k + "' (known: body, close)";
        return nullptr;
      }
    }
    return std::make_unique<Http>(body, close);
  }
  err = "unknown application '" + std::string(name) + "' (known: echo, discard, http)";
  return nullptr;
}

}  // namespace tcpterm::apps
