// Applications on the stream interface: echo, discard, http.  One object per
// listener; per-flow state lives in Stream::app() (16 bytes), so an idle
// flow costs the applications nothing.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "stack/stack.h"  // Stream and its inline accessors

namespace tcpterm::apps {

using Params = std::map<std::string, std::string, std::less<>>;

// echo: sends back every byte received; when the peer closes, closes once
// the echo is sent (passive close: CLOSE-WAIT -> LAST-ACK -> CLOSED).
class Echo final : public stack::App {
 public:
  const char* name() const override { return "echo"; }
  void on_data(stack::Stream& s) override { pump(s); }
  void on_writable(stack::Stream& s) override { pump(s); }
  void on_peer_close(stack::Stream& s) override {
    s.app().flags |= kPeerFin;
    pump(s);
  }

 private:
  static constexpr uint8_t kPeerFin = 1;
  static void pump(stack::Stream& s);
};

// discard: reads and drops; closes when the peer closes (or, with
// close=open, as soon as the connection is established: with a client that
// does the same, the FINs cross -- a simultaneous close).
class Discard final : public stack::App {
 public:
  explicit Discard(bool close_on_open = false) : close_on_open_(close_on_open) {}
  const char* name() const override { return "discard"; }
  void on_open(stack::Stream& s) override {
    if (close_on_open_) s.close();
  }
  void on_data(stack::Stream& s) override { s.consume(s.readable()); }
  void on_peer_close(stack::Stream& s) override { s.close(); }

 private:
  bool close_on_open_;
};

// http: answers each HTTP/1.x request with 200 OK, Content-Length and a body
// of `body` bytes.  Who closes first is the user's choice (close=):
//   auto    keep-alive per HTTP/1.1; for `Connection: close` or HTTP/1.0 the
//           appliance closes first after the response (active close)
//   always  the appliance closes first after every response, whatever the
//           request says (a teardown benchmark's server)
//   never   the appliance never closes first: every response is keep-alive
//           and the client ends the connection (passive close)  A
// malformed request gets 400 and a close.  Request bodies with
// Content-Length are read and dropped; chunked request bodies get 400.
class Http final : public stack::App {
 public:
  static constexpr size_t kMaxHeader = 8192;
  static constexpr uint64_t kMaxBody = 1ull << 30;
  enum class Close : uint8_t { Auto, Always, Never };
  explicit Http(uint64_t body_len, Close close = Close::Auto);
  const char* name() const override { return "http"; }
  void on_data(stack::Stream& s) override { pump(s); }
  void on_writable(stack::Stream& s) override { pump(s); }
  void on_peer_close(stack::Stream& s) override {
    s.app().flags |= kPeerFin;
    pump(s);
  }
  uint64_t body_len() const { return body_len_; }
  uint64_t requests() const { return requests_; }
  uint64_t bad_requests() const { return bad_; }

  // Parses one request head (exposed for tests).  Returns false when
  // malformed.  `keep_alive` and `content_length` are outputs.
  struct Request {
    bool head_method = false;
    bool keep_alive = true;
    uint64_t content_length = 0;
  };
  static bool parse_head(std::string_view head, Request& r);
  // The head at the start of `buf`: its length through the empty line that
  // ends it, 0 while that line has not arrived, -1 if malformed.
  static long parse_request(std::string_view buf, Request& r);

 private:
  static constexpr uint8_t kPeerFin = 1, kCloseAfter = 2;
  void pump(stack::Stream& s);
  bool start_response(stack::Stream& s, int status, bool keep_alive, bool head_only);
  uint64_t body_len_;
  Close close_;
  uint64_t requests_ = 0, bad_ = 0;
  // Response heads, formatted once: 200 keep-alive, 200 close, 400.
  std::string head_keep_, head_close_, head_bad_;
  // A small body's whole 200 responses (head and body), formatted once too:
  // sent with one send() when the window has room (empty for large bodies).
  static constexpr uint64_t kWholeMax = 4096;
  std::string whole_keep_, whole_close_;
};

// Builds an application from `--listen ...,APP[,key=value]`; nullptr and
// `err` set on an unknown app or parameter.
std::unique_ptr<stack::App> make_app(std::string_view name, const Params& params,
                                     std::string& err);

}  // namespace tcpterm::apps
