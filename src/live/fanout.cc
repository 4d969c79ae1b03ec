#include "live/fanout.h"

#include <cstring>

namespace palisade::live {
namespace {

constexpr uint32_t kNet = static_cast<uint32_t>(SKF_NET_OFF);
constexpr uint32_t kProto = static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PROTOCOL);

// A tiny assembler for forward jumps to labels. Conditional jumps only ever
// skip the `ja` that follows them; `ja` carries a 32-bit offset, so no program,
// however many prefixes it tests, can overflow a conditional's 8-bit offsets.
class Asm {
 public:
  using Label = size_t;
  Label label() {
    targets_.push_back(SIZE_MAX);
    return targets_.size() - 1;
  }
  void bind(Label l) { targets_[l] = code_.size(); }
  void op(uint16_t code, uint32_t k = 0) { code_.push_back(BPF_STMT(code, k)); }
  void ja(Label l) {
    fixes_.push_back({code_.size(), l});
    code_.push_back(BPF_STMT(BPF_JMP | BPF_JA, 0));
  }
  // if (A == k) goto t else goto f
  void jeq(uint32_t k, Label t, Label f) {
    code_.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1));
    ja(t);
    ja(f);
  }
  // if (A != k) goto f; else fall through
  void jeqOr(uint32_t k, Label f) {
    code_.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 1, 0));
    ja(f);
  }
  std::vector<sock_filter> finish() {
    for (const Fix& f : fixes_)
      code_[f.at].k = static_cast<uint32_t>(targets_[f.target] - f.at - 1);
    return std::move(code_);
  }

 private:
  struct Fix {
    size_t at;
    Label target;
  };
  std::vector<sock_filter> code_;
  std::vector<size_t> targets_;
  std::vector<Fix> fixes_;
};

// Scratch memory: M[0] M[1] IPv4 src dst; M[2..5] IPv6 src; M[6..9] IPv6 dst.
void loadV4(Asm& a, uint32_t src_off, bool indexed) {
  const uint16_t mode = indexed ? BPF_IND : BPF_ABS;
  a.op(BPF_LD | BPF_W | mode, kNet + src_off);
  a.op(BPF_ST, 0);
  a.op(BPF_LD | BPF_W | mode, kNet + src_off + 4);
  a.op(BPF_ST, 1);
}
void loadV6(Asm& a, uint32_t src_off, bool indexed) {
  const uint16_t mode = indexed ? BPF_IND : BPF_ABS;
  for (uint32_t w = 0; w < 8; ++w) {
    a.op(BPF_LD | BPF_W | mode, kNet + src_off + 4 * w);
    a.op(BPF_ST, 2 + w);
  }
}
// A = xor of M[first .. first+n)
void xorWords(Asm& a, uint32_t first, uint32_t n) {
  a.op(BPF_LD | BPF_MEM, first);
  for (uint32_t i = 1; i < n; ++i) {
    a.op(BPF_LDX | BPF_MEM, first + i);
    a.op(BPF_ALU | BPF_XOR | BPF_X);
  }
}
// The inner Ethernet frame of a VXLAN packet at `eth` bytes past the network
// header (past it + X when `indexed`): its addresses into scratch memory, then
// on to pair4/pair6; neither IPv4 nor IPv6 inside: `other`.
void innerFrame(Asm& a, uint32_t eth, bool indexed, Asm::Label other, Asm::Label pair4,
                Asm::Label pair6) {
  const auto in4 = a.label(), in6 = a.label(), not4 = a.label();
  a.op(BPF_LD | BPF_H | (indexed ? BPF_IND : BPF_ABS), kNet + eth + 12);
  a.jeq(0x0800, in4, not4);
  a.bind(not4);
  a.jeq(0x86dd, in6, other);
  a.bind(in4);
  loadV4(a, eth + 14 + 12, indexed);
  a.ja(pair4);
  a.bind(in6);
  loadV6(a, eth + 14 + 8, indexed);
  a.ja(pair6);
}

uint32_t word(const std::array<uint8_t, 16>& b, size_t i) {
  return static_cast<uint32_t>(b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3]);
}
uint32_t maskWord(unsigned bits) {
  return bits >= 32 ? 0xffffffffu : bits == 0 ? 0 : ~((1u << (32 - bits)) - 1);
}

}  // namespace

std::vector<sock_filter> fanoutProgram(PortRole role, std::span<const Prefix> private_space,
                                       uint16_t vxlan_port) {
  Asm a;
  const auto v4 = a.label(), v6 = a.label(), mix = a.label(), zero = a.label();
  const auto pair4 = a.label(), pair6 = a.label(), remote4 = a.label(), remote6 = a.label();
  a.op(BPF_LD | BPF_W | BPF_ABS, kProto);
  const auto not4 = a.label();
  a.jeq(0x0800, v4, not4);
  a.bind(not4);
  a.jeq(0x86dd, v6, zero);

  if (role == PortRole::Nic) {
    const auto dst_remote4 = a.label(), dst_remote6 = a.label();
    a.bind(v4);
    loadV4(a, 12, false);
    for (const Prefix& p : private_space) {
      if (!p.isV4()) continue;
      const auto next = a.label();
      a.op(BPF_LD | BPF_MEM, 1);
      a.op(BPF_ALU | BPF_AND | BPF_K, maskWord(p.len));
      a.jeqOr(word(p.addr.b, 12) & maskWord(p.len), next);
      a.ja(pair4);
      a.bind(next);
    }
    a.ja(dst_remote4);
    a.bind(v6);
    loadV6(a, 8, false);
    for (const Prefix& p : private_space) {
      if (p.isV4()) continue;
      const auto next = a.label();
      for (unsigned w = 0; w < 4 && w * 32 < p.len; ++w) {
        const uint32_t m = maskWord(p.len - w * 32);
        a.op(BPF_LD | BPF_MEM, 6 + w);
        a.op(BPF_ALU | BPF_AND | BPF_K, m);
        a.jeqOr(word(p.addr.b, 4 * w) & m, next);
      }
      a.ja(pair6);
      a.bind(next);
    }
    a.ja(dst_remote6);
    a.bind(dst_remote4);
    a.op(BPF_LD | BPF_MEM, 1);
    a.ja(mix);
    a.bind(dst_remote6);
    xorWords(a, 6, 4);
    a.ja(mix);
  } else {
    // Outer IPv4: UDP to the VXLAN port carries an inner Ethernet frame.
    a.bind(v4);
    loadV4(a, 12, false);
    a.op(BPF_LD | BPF_B | BPF_ABS, kNet + 9);
    a.jeqOr(17, remote4);
    a.op(BPF_LD | BPF_B | BPF_ABS, kNet + 0);
    a.op(BPF_ALU | BPF_AND | BPF_K, 0x0f);
    a.op(BPF_ALU | BPF_LSH | BPF_K, 2);
    a.op(BPF_MISC | BPF_TAX);
    a.op(BPF_LD | BPF_H | BPF_IND, kNet + 2);
    a.jeqOr(vxlan_port, remote4);
    // X + 8 (UDP) + 8 (VXLAN) = the inner Ethernet frame.
    innerFrame(a, 16, true, remote4, pair4, pair6);

    // Outer IPv6 with UDP right after the fixed header (no extension headers).
    a.bind(v6);
    loadV6(a, 8, false);
    a.op(BPF_LD | BPF_B | BPF_ABS, kNet + 6);
    a.jeqOr(17, remote6);
    a.op(BPF_LD | BPF_H | BPF_ABS, kNet + 42);
    a.jeqOr(vxlan_port, remote6);
    innerFrame(a, 40 + 16, false, remote6, pair4, pair6);

    a.bind(remote4);
    a.op(BPF_LD | BPF_MEM, 0);
    a.ja(mix);
    a.bind(remote6);
    xorWords(a, 2, 4);
    a.ja(mix);
  }

  a.bind(pair4);
  xorWords(a, 0, 2);
  a.ja(mix);
  a.bind(pair6);
  xorWords(a, 2, 8);
  // Spread the bits: the kernel takes the value modulo the number of workers.
  a.bind(mix);
  a.op(BPF_MISC | BPF_TAX);
  a.op(BPF_ALU | BPF_RSH | BPF_K, 16);
  a.op(BPF_ALU | BPF_XOR | BPF_X);
  a.op(BPF_ALU | BPF_MUL | BPF_K, 0x045d9f3b);
  a.op(BPF_MISC | BPF_TAX);
  a.op(BPF_ALU | BPF_RSH | BPF_K, 16);
  a.op(BPF_ALU | BPF_XOR | BPF_X);
  a.op(BPF_RET | BPF_A);
  a.bind(zero);
  a.op(BPF_RET | BPF_K, 0);
  return a.finish();
}

uint32_t runFanoutProgram(std::span<const sock_filter> prog, Bytes frame) {
  if (frame.size() < 14) return 0;
  const uint32_t proto = static_cast<uint32_t>(frame[12]) << 8 | static_cast<uint32_t>(frame[13]);
  const Bytes net = frame.subspan(14);
  uint32_t A = 0, X = 0, M[BPF_MEMWORDS] = {};
  bool ok = true;
  auto load = [&](uint32_t off, size_t n) -> uint32_t {
    if (off == kProto) return proto;
    if (off < kNet || off - kNet + n > net.size()) {
      ok = false;
      return 0;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i)
      v = v << 8 | static_cast<uint32_t>(net[off - kNet + i]);
    return v;
  };
  for (size_t pc = 0; pc < prog.size() && ok; ++pc) {
    const sock_filter& f = prog[pc];
    const size_t n = BPF_SIZE(f.code) == BPF_W ? 4 : BPF_SIZE(f.code) == BPF_H ? 2 : 1;
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
        if (BPF_MODE(f.code) == BPF_ABS)
          A = load(f.k, n);
        else if (BPF_MODE(f.code) == BPF_IND)
          A = load(f.k + X, n);
        else if (BPF_MODE(f.code) == BPF_MEM)
          A = M[f.k];
        else
          A = f.k;
        break;
      case BPF_LDX:
        X = BPF_MODE(f.code) == BPF_MEM ? M[f.k] : f.k;
        break;
      case BPF_ST:
        M[f.k] = A;
        break;
      case BPF_STX:
        M[f.k] = X;
        break;
      case BPF_ALU: {
        const uint32_t v = BPF_SRC(f.code) == BPF_X ? X : f.k;
        switch (BPF_OP(f.code)) {
          case BPF_AND:
            A &= v;
            break;
          case BPF_OR:
            A |= v;
            break;
          case BPF_XOR:
            A ^= v;
            break;
          case BPF_LSH:
            A <<= v;
            break;
          case BPF_RSH:
            A >>= v;
            break;
          case BPF_MUL:
            A *= v;
            break;
          case BPF_ADD:
            A += v;
            break;
          default:
            return 0;
        }
        break;
      }
      case BPF_JMP:
        if (BPF_OP(f.code) == BPF_JA)
          pc += f.k;
        else if (BPF_OP(f.code) == BPF_JEQ)
          pc += A == f.k ? f.jt : f.jf;
        else
          return 0;
        break;
      case BPF_RET:
        return BPF_RVAL(f.code) == BPF_A ? A : f.k;
      case BPF_MISC:
        BPF_MISCOP(f.code) == BPF_TAX ? X = A : A = X;
        break;
      default:
        return 0;
    }
  }
  return 0;  // a failed load ends the program with 0, as in the kernel
}

}  // namespace palisade::live
