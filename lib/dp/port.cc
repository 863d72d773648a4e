// Ports, pools, workers and listeners: everything set up before the lcores
// run, and everything torn down after (ports stopped, every mbuf checked
// back into its pool).  Also routes and the TIME-WAIT sizing.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "dp/dataplane.h"
#include "dp/rss.h"
#include "lb/proxy.h"
#include "tcp/random.h"

namespace tcpterm::dp {

namespace {
constexpr uint16_t kRxDesc = 1024, kTxDesc = 1024;
constexpr unsigned kPoolCache = 256;

int worker_main(void* arg) { return static_cast<Worker*>(arg)->run(); }
int build_worker(void* arg) {
  auto* w = static_cast<Worker*>(arg);
  try {
    w->build(w->dp_config());
  } catch (const std::bad_alloc&) {
    return -1;
  }
  return 0;
}
}  // namespace

// ============================================================= Dataplane ===
Dataplane::Dataplane(const config::Options& o) : opts_(o) {
  auto& s = opts_.stack;
  s.ooo_states = std::max<uint32_t>(64, s.max_flows / 16);
}

Dataplane::~Dataplane() = default;

int Dataplane::port_of(uint32_t addr) const {
  for (const PortInfo& p : ports_)
    for (const auto& a : p.addrs)
      if (a.contains(addr)) return p.id;
  return -1;
}

int Dataplane::port_of6(const wire::Ip6& addr) const {
  for (const PortInfo& p : ports_)
    for (const auto& a : p.addrs6)
      if (a.contains(addr)) return p.id;
  return -1;
}

bool Dataplane::owns6(uint16_t port, const wire::Ip6& addr) const {
  for (const auto& a : ports_[port].addrs6)
    if (a.contains(addr)) return true;
  return false;
}

bool Dataplane::owns_solicited6(uint16_t port, const wire::Ip6& g) const {
  // ff02::1:ffXX:XXXX: the group of every address ending in XX:XXXX.
  if (wire::solicited_node(g) != g) return false;
  uint32_t low24 = wire::load32(g.data() + 12) & 0xffffff;
  for (const auto& a : ports_[port].addrs6) {
    uint64_t first = a.first_lo(), last = a.last_lo;
    if (last - first >= 0xffffff) return true;
    // Some lo in [first, last] has these low 24 bits.
    uint64_t cand = (first & ~0xffffffull) | low24;
    if (cand < first) cand += 0x1000000;
    if (cand <= last) return true;
  }
  return false;
}

bool Dataplane::source_for6(const wire::Ip6& dst, wire::Ip6& out) const {
  const Route6* r = routes6_.lookup(dst);
  if (!r || r->port >= ports_.size()) return false;
  const wire::Ip6& hop = r->has_gateway ? r->gateway : dst;
  const auto& addrs = ports_[r->port].addrs6;
  for (const auto& a : addrs)
    if (wire::ip6_prefix_match(a.addr, hop, a.prefix)) {
      out = a.addr;
      return true;
    }
  if (addrs.empty()) return false;
  out = addrs[0].addr;
  return true;
}

// Two ring ports, A (the generator's side) and B (the terminator's), joined
// crosswise so that what worker q sends on one port is received by worker
// n-1-q on the other: with two workers, the generator on worker 1 talks to
// the terminator on worker 0, each on its own lcore.
bool Dataplane::create_ring_pair(std::string& err) {
  unsigned n = unsigned(workers_.size());
  std::vector<rte_ring*> a2b(n), b2a(n);
  for (unsigned q = 0; q < n; q++) {
    std::string an = "tt_a2b_" + std::to_string(q), bn = "tt_b2a_" + std::to_string(q);
    a2b[q] = rte_ring_create(an.c_str(), 4096, int(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
    b2a[q] = rte_ring_create(bn.c_str(), 4096, int(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!a2b[q] || !b2a[q]) {
      err = "cannot create the ring pair's rings: " + std::string(rte_strerror(rte_errno));
      return false;
    }
  }
  std::vector<rte_ring*> a_rx(n), a_tx(n), b_rx(n), b_tx(n);
  for (unsigned q = 0; q < n; q++) {
    a_tx[q] = a2b[q];
    b_rx[q] = a2b[n - 1 - q];
    b_tx[q] = b2a[q];
    a_rx[q] = b2a[n - 1 - q];
  }
  if (rte_eth_from_rings("tt_ring_a", a_rx.data(), n, a_tx.data(), n, rte_socket_id()) < 0 ||
      rte_eth_from_rings("tt_ring_b", b_rx.data(), n, b_tx.data(), n, rte_socket_id()) < 0) {
    err = "cannot create the ring pair ports: " + std::string(rte_strerror(rte_errno));
    return false;
  }
  return true;
}

bool Dataplane::init_port(uint16_t port, std::string& err) {
  PortInfo pi;
  pi.id = port;
  pi.queues = uint16_t(workers_.empty() ? rte_lcore_count() - 1 : workers_.size());
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) {
    err = "port " + std::to_string(port) + ": rte_eth_dev_info_get failed: " + rte_strerror(-rc);
    return false;
  }
  pi.driver = info.driver_name ? info.driver_name : "?";
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(port, name);
  pi.name = name;
  if (pi.queues > info.max_rx_queues || pi.queues > info.max_tx_queues) {
    err = "port " + std::to_string(port) + " (" + pi.driver + ") has " +
          std::to_string(info.max_rx_queues) + " rx queues, " + std::to_string(pi.queues) +
          " workers need one each";
    return false;
  }
  rte_eth_conf conf{};
  if (pi.queues > 1 && info.flow_type_rss_offloads) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP) & info.flow_type_rss_offloads;
    pi.rss = conf.rx_adv_conf.rss_conf.rss_hf != 0;
  }
  // Enable an offload only when the device reports it.
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    pi.rx_ip_cksum = true;
  }
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
    pi.rx_tcp_cksum = true;
  }
  if ((info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) &&
      (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_CKSUM)) {
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
    pi.tx_ip_cksum = pi.tx_tcp_cksum = true;
  }
  if (int rc = rte_eth_dev_configure(port, pi.queues, pi.queues, &conf); rc != 0) {
    err = "port " + std::to_string(port) + ": configure failed: " + rte_strerror(-rc);
    return false;
  }
  uint16_t nrx = kRxDesc, ntx = kTxDesc;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx); rc != 0) {
    err = "port " + std::to_string(port) + ": descriptor counts refused: " + rte_strerror(-rc);
    return false;
  }
  pi.socket = rte_eth_dev_socket_id(port);
  if (pi.socket < 0) pi.socket = 0;
  rte_eth_rxconf rxc = info.default_rxconf;
  rxc.offloads = conf.rxmode.offloads;
  rte_eth_txconf txc = info.default_txconf;
  txc.offloads = conf.txmode.offloads;
  for (uint16_t q = 0; q < pi.queues; q++) {
    unsigned lc = workers_[q]->lcore();
    int sock = int(rte_lcore_to_socket_id(lc));
    rte_mempool* pool = pools_[size_t(sock) < pools_.size() && pools_[size_t(sock)] ? sock : 0];
    if (rte_eth_rx_queue_setup(port, q, nrx, unsigned(pi.socket), &rxc, pool) < 0 ||
        rte_eth_tx_queue_setup(port, q, ntx, unsigned(pi.socket), &txc) < 0) {
      err = "port " + std::to_string(port) + ": queue " + std::to_string(q) + " setup failed";
      return false;
    }
  }
  if (int rc = rte_eth_dev_start(port); rc != 0) {
    err = "port " + std::to_string(port) + ": start failed: " + rte_strerror(-rc);
    return false;
  }
  rte_eth_macaddr_get(port, &pi.mac);
  for (const auto& a : opts_.addrs)
    if (a.port == port) pi.addrs.push_back(a);
  for (const auto& a : opts_.addrs6)
    if (a.port == port) pi.addrs6.push_back(a);
  // IPv6 neighbour discovery is multicast (solicited-node groups, 33:33:...).
  if (!opts_.addrs6.empty()) rte_eth_allmulticast_enable(port);
  ports_.push_back(pi);
  return true;
}

bool Dataplane::init(std::string& err) {
  tsc_per_ms_ = std::max<uint64_t>(1, rte_get_tsc_hz() / 1000);
  std::vector<unsigned> lcores;
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) lcores.push_back(lc);
  if (lcores.empty()) {
    err = "no worker lcore: give EAL at least two, e.g. -l 0,1 (the main lcore runs the CLI)";
    return false;
  }
  if (opts_.ring_pair && lcores.size() < 2) {
    err = "--ring-pair needs two worker lcores (generator and terminator), e.g. --lcores 0@0,1@1,2@0";
    return false;
  }
  uint16_t nports = uint16_t(rte_eth_dev_count_avail() + (opts_.ring_pair ? 2 : 0));
  if (nports == 0) {
    err = "no Ethernet ports: add a device, e.g. --vdev net_tap0,iface=tt0";
    return false;
  }
  for (const auto& a : opts_.addrs)
    if (a.port >= nports) {
      err = "--addr: port " + std::to_string(a.port) + " does not exist (" + std::to_string(nports) + " ports)";
      return false;
    }
  for (const auto& a : opts_.addrs6)
    if (a.port >= nports) {
      err = "--addr: port " + std::to_string(a.port) + " does not exist (" + std::to_string(nports) + " ports)";
      return false;
    }
  // One mbuf pool per NUMA socket in use.
  unsigned per_queue = kRxDesc + kTxDesc + 2 * kBurst + kPoolCache;
  unsigned n = std::max(8191u, nports * unsigned(lcores.size()) * per_queue + 4096) ;
  for (unsigned l : lcores) {
    unsigned sock = rte_lcore_to_socket_id(l);
    if (pools_.size() <= sock) pools_.resize(sock + 1, nullptr);
    if (pools_[sock]) continue;
    std::string name = "tcpterm_mbuf_s" + std::to_string(sock);
    pools_[sock] = rte_pktmbuf_pool_create(name.c_str(), n, kPoolCache, 0,
                                           RTE_MBUF_DEFAULT_BUF_SIZE, int(sock));
    if (!pools_[sock]) {
      err = "cannot create mbuf pool on socket " + std::to_string(sock) + ": " + rte_strerror(rte_errno);
      return false;
    }
  }
  for (size_t q = 0; q < lcores.size(); q++) {
    unsigned sock = rte_lcore_to_socket_id(lcores[q]);
    workers_.push_back(std::make_unique<Worker>(*this, lcores[q], uint16_t(q), pools_[sock]));
  }
  size_time_wait();
  // Each worker builds its own stack on its own lcore: first touch puts the
  // flow table, TCBs, wheel, records and chunks on the lcore's NUMA socket.
  for (auto& w : workers_) {
    if (int rc = rte_eal_remote_launch(build_worker, w.get(), w->lcore()); rc != 0) {
      err = "cannot launch lcore " + std::to_string(w->lcore()) + ": " + rte_strerror(-rc);
      return false;
    }
  }
  for (auto& w : workers_) {
    if (rte_eal_wait_lcore(w->lcore()) != 0) {
      err = "lcore " + std::to_string(w->lcore()) + " could not allocate its stack (--max-flows, --buffer-chunks too large?)";
      return false;
    }
  }
  if (opts_.ring_pair && !create_ring_pair(err)) return false;
  for (uint16_t p = 0; p < nports; p++)
    if (!init_port(p, err)) return false;
  if (!init_routes(err)) return false;
  for (auto& w : workers_)
    if (!w->init_tx()) {
      err = "cannot allocate TX buffers";
      return false;
    }
  if (opts_.ring_pair) {
    // The last two ports are the pair: each one's peer is the other.
    PortInfo& a = ports_[nports - 2];
    PortInfo& b = ports_[nports - 1];
    a.has_peer_mac = b.has_peer_mac = true;
    a.peer_mac = b.mac;
    b.peer_mac = a.mac;
    if (opts_.ring_cksum_offload)
      for (PortInfo* p : {&a, &b}) p->virtual_wire = p->tx_ip_cksum = p->tx_tcp_cksum = true;
  }
  // Which lcore owns a flow on a multi-queue port.  The ring pair's queues
  // are joined to workers by construction.  A NIC whose RSS key and table
  // can be read steers by Toeplitz (steer_for).  Elsewhere the queue a frame
  // arrives on says nothing about its flow: a TAP (which offers no RSS
  // configuration to read) gets the kernel's choice, by its own hash, and
  // for a flow's first reply before it has learned the queue our side wrote
  // on; a memif the peer's.  There software steering hands each frame to
  // the lcore its tuple names (Worker::steer).
  for (PortInfo& p : ports_) {
    if (p.queues <= 1 || p.has_peer_mac || steer_for(p.id)) continue;
    p.sw_steer = std::make_shared<RssSteer>(uint16_t(workers_.size()), tcp::random_u64());  // a secret, as every hash key
  }
  if (std::any_of(ports_.begin(), ports_.end(), [](const PortInfo& p) { return p.sw_steer != nullptr; }))
    for (auto& w : workers_) {
      // Many producers (the other lcores), one consumer (this one).
      std::string name = "tt_inbox_" + std::to_string(w->queue());
      rte_ring* r = rte_ring_create(name.c_str(), kInbox, w->socket(), RING_F_SC_DEQ);
      if (!r) {
        err = "cannot create the steering ring of lcore " + std::to_string(w->lcore()) + ": " + rte_strerror(rte_errno);
        return false;
      }
      w->set_inbox(r);
    }
  // The client role runs on the last worker (with --ring-pair: the one whose
  // queue the pair joins to the terminator on worker 0).
  for (const auto& c : opts_.connects) {
    apps::GeneratorConfig g;
    g.v6 = c.v6;
    g.dst6 = c.addr6;
    g.src6 = c.src6;
    g.dst = c.addr;
    g.dport = c.port;
    g.src = {{c.src_first, c.src_last}};
    g.port_lo = c.sport_lo;
    g.port_hi = c.sport_hi;
    g.rate = c.rate;
    g.concurrency = c.concurrency;
    g.count = c.count;
    g.duration_ms = c.duration_ms;
    g.request_bytes = c.request;
    apps::parse_close_mode(c.close, g.mode);
    // With RSS over several queues, keep only source ports whose replies the
    // NIC steers back to the generator's own queue (Toeplitz, rte_softrss).
    if (c.v6) {
      if (auto steer = steer_for(port_of6(c.src6))) {
        uint16_t own = workers_.back()->queue();
        wire::Ip6 dst = c.addr6;
        uint16_t dport = c.port;
        g.accept6 = [steer, own, dst, dport](const wire::Ip6& src, uint16_t sport) {
          return steer->queue6(dst, src, dport, sport) == own;
        };
      }
    } else if (auto steer = steer_for(port_of(c.src_first))) {
      uint16_t own = workers_.back()->queue();
      uint32_t dst = c.addr;
      uint16_t dport = c.port;
      g.accept = [steer, own, dst, dport](uint32_t src, uint16_t sport) {
        return steer->queue(dst, src, dport, sport) == own;  // the reply's tuple
      };
    }
    // A forgetful generator's whole stack forgets (tcp::Config::forgetful).
    if (g.mode == apps::CloseMode::Forgetful) workers_.back()->stack().tcp_config().forgetful = true;
    workers_.back()->set_generator(std::make_unique<apps::Generator>(g));
  }
  for (const auto& p : ports_)
    if (p.socket >= 0)
      for (const auto& w : workers_)
        if (w->socket() != p.socket)
          spdlog::warn("port {} is on NUMA socket {} but lcore {} on socket {}: every packet crosses sockets",
                       p.id, p.socket, w->lcore(), w->socket());
  if (!init_balancers(err)) return false;
  // Listeners: one application object per listener per worker.
  for (const auto& l : opts_.listens) {
    for (auto& w : workers_) {
      std::string e;
      std::unique_ptr<stack::App> app;
      if (l.app == "proxy") {
        int pi = w->balancer() ? w->balancer()->find_pool(l.params.at("pool")) : -1;
        if (pi >= 0) app = std::make_unique<lb::Proxy>(*w->balancer(), pi);
        else e = "--listen " + l.text + ": no such pool";
      } else {
        app = apps::make_app(l.app, l.params, e);
      }
      if (!app) {
        err = e;
        return false;
      }
      if (l.v6) w->stack().add_listener6(l.addr6, l.port, app.get());
      else w->stack().add_listener(l.addr, l.port, app.get());
      w->add_app(std::move(app));
    }
  }
  return true;
}

void Dataplane::start() {
  std::lock_guard<std::mutex> lock(query_mu_);
  if (running_.load()) return;
  stop_.store(false);
  for (auto& w : workers_) rte_eal_remote_launch(worker_main, w.get(), w->lcore());
  running_.store(true);
}

void Dataplane::stop() {
  // Under the control channel's lock: a query in flight finishes (or times
  // out) first, and none starts until the workers are back and the queues
  // drained.
  std::lock_guard<std::mutex> lock(query_mu_);
  if (!running_.load()) return;
  stop_.store(true);
  for (auto& w : workers_) rte_eal_wait_lcore(w->lcore());
  running_.store(false);
  drain_requests();
}

std::string Dataplane::shutdown(bool& leak) {
  stop();
  size_t flows = 0, tw = 0;
  for (auto& w : workers_) {
    flows += w->stack().flows();
    tw += w->stack().time_wait_records();
    w->stack().clear_all();
    w->flush_tx();
  }
  // Frames still in flight (in RX rings, or between the ring pair's ports)
  // go back to their pool before the ports close.  Bounded: some PMDs
  // (net_null) never run dry; the pair's rings hold at most 4096 each.
  constexpr int kDrainBursts = 4096 / int(kBurst) + 1;
  for (const PortInfo& p : ports_)
    for (uint16_t q = 0; q < p.queues; q++) {
      rte_mbuf* pk[kBurst];
      for (int b = 0; b < kDrainBursts; b++) {
        uint16_t got = rte_eth_rx_burst(p.id, q, pk, kBurst);
        if (!got) break;
        rte_pktmbuf_free_bulk(pk, got);
      }
    }
  for (const PortInfo& p : ports_) {
    rte_eth_dev_stop(p.id);
    rte_eth_dev_close(p.id);
  }
  workers_.clear();  // frees TX buffers
  std::string s = "shutdown: released " + std::to_string(flows) + " flows and " +
                  std::to_string(tw) + " TIME-WAIT records";
  leak = false;
  for (rte_mempool* mp : pools_) {
    if (!mp) continue;
    unsigned in_use = rte_mempool_in_use_count(mp);
    s += "; mbufs: " + std::to_string(mp->size - in_use) + "/" + std::to_string(mp->size) +
         " back in " + mp->name;
    if (in_use) leak = true;
    rte_mempool_free(mp);
  }
  pools_.clear();
  return s;
}


std::shared_ptr<RssSteer> Dataplane::steer_for(int port) const {
  if (port >= 0 && ports_[size_t(port)].sw_steer) return ports_[size_t(port)].sw_steer;
  if (port < 0 || !ports_[size_t(port)].rss || ports_[size_t(port)].queues <= 1) return nullptr;
  uint16_t gp = uint16_t(port);
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(gp, &info) != 0) return nullptr;
  std::vector<uint8_t> key(info.hash_key_size ? info.hash_key_size : 40);
  rte_eth_rss_conf rc{};
  rc.rss_key = key.data();
  rc.rss_key_len = uint8_t(key.size());
  std::vector<uint16_t> reta(info.reta_size ? info.reta_size : 128);
  std::vector<rte_eth_rss_reta_entry64> conf((reta.size() + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
  for (auto& e : conf) e.mask = ~0ull;
  if (rte_eth_dev_rss_hash_conf_get(gp, &rc) != 0 ||
      rte_eth_dev_rss_reta_query(gp, conf.data(), uint16_t(reta.size())) != 0)
    return nullptr;
  for (size_t i = 0; i < reta.size(); i++)
    reta[i] = conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
  return std::make_shared<RssSteer>(key, reta);
}

uint32_t Dataplane::source_for(uint32_t dst) const {
  const Route* r = routes_.lookup(dst);
  if (!r || r->port >= ports_.size()) return 0;
  uint32_t hop = r->gateway ? r->gateway : dst;
  const auto& addrs = ports_[r->port].addrs;
  for (const auto& a : addrs) {
    uint32_t mask = a.prefix ? ~0u << (32 - a.prefix) : 0;
    if ((a.addr & mask) == (hop & mask)) return a.addr;
  }
  return addrs.empty() ? 0 : addrs[0].addr;
}

bool Dataplane::init_balancers(std::string& err) {
  if (opts_.pools.empty()) return true;
  // One balancer per worker, with the same pools; each learns which source
  // ports bring a backend's replies back to its own queue.
  std::vector<std::shared_ptr<RssSteer>> steer(ports_.size());
  for (size_t p = 0; p < ports_.size(); p++) steer[p] = steer_for(int(p));
  for (auto& w : workers_) {
    lb::Balancer::Edge edge;
    edge.source_for = [this](uint32_t dst) { return source_for(dst); };
    uint16_t own = w->queue();
    edge.steer_ok = [this, steer, own](uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport) {
      int p = port_of(src);
      if (p < 0 || !steer[size_t(p)]) return true;
      return steer[size_t(p)]->queue(dst, src, dport, sport) == own;  // the reply's tuple
    };
    edge.source_for6 = [this](const wire::Ip6& dst, wire::Ip6& src) { return source_for6(dst, src); };
    edge.steer_ok6 = [this, steer, own](const wire::Ip6& src, uint16_t sport, const wire::Ip6& dst, uint16_t dport) {
      int p = port_of6(src);
      if (p < 0 || !steer[size_t(p)]) return true;
      return steer[size_t(p)]->queue6(dst, src, dport, sport) == own;
    };
    auto b = std::make_unique<lb::Balancer>(edge);
    for (const auto& pc : opts_.pools) {
      if (!b->add_pool(pc, err)) return false;
    }
    w->set_balancer(std::move(b));
  }
  for (const auto& pc : opts_.pools)
    for (const auto& be : pc.backends)
      if (be.v6) {
        wire::Ip6 src;
        if (!source_for6(be.addr6, src)) {
          err = "--pool " + pc.name + ": no IPv6 address of the appliance reaches backend " + be.endpoint() +
                " (add an --addr on its subnet or a --route)";
          return false;
        }
      } else if (!pc.src_first && !source_for(be.addr)) {
        err = "--pool " + pc.name + ": no address of the appliance reaches backend " +
              wire::ip_to_string(be.addr) + " (add an --addr on its subnet, a --route, or src=)";
        return false;
      }
  return true;
}

bool Dataplane::init_routes(std::string& err) {
  // On-link prefixes from --addr, then --route entries whose gateway must be
  // on-link on some port.
  for (const auto& a : opts_.addrs) {
    uint32_t mask = a.prefix == 0 ? 0 : ~0u << (32 - a.prefix);
    routes_.add(Route{a.addr & mask, a.prefix, 0, a.port});
  }
  for (const auto& r : opts_.routes) {
    if (r.v6) continue;
    int port = -1;
    for (const auto& p : ports_)
      if (routes_.on_link(p.id, r.gateway)) port = p.id;
    if (port < 0) {
      err = "--route " + r.text + ": gateway " + wire::ip_to_string(r.gateway) +
            " is not on-link (no --addr prefix holds it)";
      return false;
    }
    routes_.add(Route{r.prefix, r.len, r.gateway, uint16_t(port)});
  }
  for (const auto& a : opts_.addrs6) {
    Route6 r;
    r.prefix = wire::ip6_masked(a.addr, a.prefix);
    r.len = a.prefix;
    r.port = a.port;
    routes6_.add(r);
  }
  for (const auto& r : opts_.routes) {
    if (!r.v6) continue;
    // The gateway must be inside an --addr prefix (a link-local gateway
    // would need a zone to name its port: give the router's global address).
    int port = -1;
    for (const auto& p : ports_)
      for (const auto& ad : p.addrs6)
        if (wire::ip6_prefix_match(ad.addr, r.gateway6, ad.prefix)) port = p.id;
    if (port < 0) {
      err = "--route " + r.text + ": gateway " + wire::ip6_to_string(r.gateway6) +
            " is not on-link (no --addr prefix holds it)";
      return false;
    }
    routes6_.add(Route6{r.prefix6, r.len, true, r.gateway6, uint16_t(port)});
  }
  return true;
}

void Dataplane::size_time_wait() {
  auto& s = opts_.stack;
  if (s.max_time_wait != 0) return;
  // auto: a quarter of the machine's memory, shared by the workers, at 32
  // bytes a record plus its flow-table share (64-byte buckets, 7 of 8 slots:
  // ~9.2 bytes).  The arrays are mapped lazily, so this is a ceiling, not an
  // allocation.
  uint64_t ram = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
  uint64_t per_worker = ram / 4 / std::max<size_t>(1, workers_.size());
  constexpr uint64_t kBytesPerRecord = sizeof(flow::TwRecord) + 64 / 7 + 1;
  uint64_t n = std::clamp<uint64_t>(per_worker / kBytesPerRecord, 65536, flow::TimeWaitTable::kMaxCapacity);
  s.max_time_wait = uint32_t(n);
  uint64_t rate = n * 1000 / std::max<uint32_t>(1, s.tcp.two_msl_ms());
  spdlog::info("TIME-WAIT: up to {} records per lcore (auto: 1/4 of {} MiB RAM over {} lcore(s), {} MiB each); "
               "at 2*MSL = {} ms that keeps every TIME-WAIT up to {} closes/s per lcore",
               n, ram >> 20, workers_.size(), (n * kBytesPerRecord) >> 20, s.tcp.two_msl_ms(), rate);
}

}  // namespace tcpterm::dp
