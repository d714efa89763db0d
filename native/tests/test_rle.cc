// The COCO RLE batch functions (rle_encode_batch, rle_encode_batch_strings,
// rle_decode_batch, rle_resolve_all) against the single-mask functions as the
// oracle, at several thread counts; the single-mask functions themselves are
// tested against a plain reference in test_mask.cc.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "rle.h"
#include "test.h"

using namespace genaug;

namespace {

// n random h x w masks one after another: blobs of varied density, plus an
// empty and a full mask when n allows, so runs of every length occur.
std::vector<uint8_t> random_masks(int64_t n, int64_t h, int64_t w, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> m(static_cast<size_t>(n * h * w));
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* p = m.data() + i * h * w;
    const int kind = static_cast<int>(i % 4);
    std::bernoulli_distribution on(kind == 0 ? 0.05 : kind == 1 ? 0.5 : 0.95);
    for (int64_t k = 0; k < h * w; ++k) p[k] = on(rng) ? static_cast<uint8_t>(1 + rng() % 255) : 0;  // any nonzero is 1
    if (i == 1) std::memset(p, 0, static_cast<size_t>(h * w));
    if (i == 2) std::memset(p, 1, static_cast<size_t>(h * w));
  }
  return m;
}

RleInput counts_input(const std::vector<uint32_t>& c) {
  RleInput in;
  in.counts = c.data();
  in.m = c.size();
  return in;
}

RleInput string_input(const std::string& s) {
  RleInput in;
  in.is_string = true;
  in.str = s;
  return in;
}

}  // namespace

TEST(rle_encode_batch_matches_single_mask_encode_at_every_thread_count) {
  for (auto [h, w] : {std::pair<int64_t, int64_t>{1, 1}, {1, 70}, {70, 1}, {13, 17}, {64, 65}, {3, 129}}) {
    const int64_t n = 23;
    const std::vector<uint8_t> data = random_masks(n, h, w, static_cast<uint32_t>(h * 1000 + w));
    std::vector<std::vector<uint32_t>> want;
    std::vector<std::string> want_s;
    for (int64_t i = 0; i < n; ++i) {
      want.push_back(rle_encode(data.data() + i * h * w, h, w));
      want_s.push_back(rle_to_string(want.back().data(), want.back().size()));
    }
    const MaskBatchView v{data.data(), n, h, w};
    for (int threads : {1, 2, 3, 0}) {
      CHECK(rle_encode_batch(v, threads) == want);
      CHECK(rle_encode_batch_strings(v, threads) == want_s);
    }
  }
}

TEST(rle_encode_batch_empty_and_zero_sized) {
  CHECK(rle_encode_batch(MaskBatchView{nullptr, 0, 5, 5}, 2).empty());
  CHECK(rle_encode_batch_strings(MaskBatchView{nullptr, 0, 5, 5}, 1).empty());
  // Masks of 0 pixels: each encodes as the single count 0, as rle_encode does.
  const auto z = rle_encode_batch(MaskBatchView{nullptr, 3, 0, 4}, 2);
  CHECK_EQ(z.size(), size_t(3));
  for (const auto& c : z) CHECK((c == rle_encode(nullptr, 0, 4)));
  CHECK_THROWS_CODE(rle_encode_batch(MaskBatchView{nullptr, -1, 2, 2}), "E_SHAPE");
  CHECK_THROWS_CODE(rle_encode_batch(MaskBatchView{nullptr, 2, 2, 2}), "E_SHAPE");
  CHECK_THROWS_CODE(rle_encode_batch_strings(MaskBatchView{nullptr, 1, -2, 2}), "E_SHAPE");
  CHECK_THROWS_CODE(rle_encode_batch(MaskBatchView{nullptr, 1, int64_t(1) << 20, int64_t(1) << 20}), "E_LIMIT");
}

TEST(rle_decode_batch_matches_single_mask_decode_at_every_thread_count) {
  const int64_t n = 19, h = 31, w = 9;
  const std::vector<uint8_t> data = random_masks(n, h, w, 7);
  std::vector<std::vector<uint32_t>> counts;
  std::vector<std::string> strings;
  std::vector<uint8_t> want(static_cast<size_t>(n * h * w));
  for (int64_t i = 0; i < n; ++i) {
    counts.push_back(rle_encode(data.data() + i * h * w, h, w));
    strings.push_back(rle_to_string(counts.back().data(), counts.back().size()));
    rle_decode(counts.back().data(), counts.back().size(), h, w, want.data() + i * h * w);
  }
  // The oracle agrees with the masks (nonzero = 1).
  for (size_t k = 0; k < want.size(); ++k) CHECK_EQ(int(want[k]), int(data[k] != 0));
  for (int threads : {1, 2, 4, 0}) {
    // Counts, strings, and a mix of both (odd entries as strings).
    for (int form = 0; form < 3; ++form) {
      std::vector<RleInput> in;
      for (int64_t i = 0; i < n; ++i)
        in.push_back(form == 0 || (form == 2 && i % 2 == 0) ? counts_input(counts[i]) : string_input(strings[i]));
      std::vector<uint8_t> got(want.size(), 0xAB);
      rle_decode_batch(in, h, w, got.data(), threads);
      CHECK(got == want);
    }
  }
  std::vector<RleInput> none;
  rle_decode_batch(none, h, w, nullptr, 2);  // nothing to do, nothing written
}

TEST(rle_decode_batch_reports_the_first_bad_entry_whatever_the_threads) {
  const int64_t h = 4, w = 4, n = 40;
  const std::vector<uint32_t> good{3, 5, 8};
  const std::vector<uint32_t> short_sum{3, 5};  // sums to 8, not 16
  for (int threads : {1, 2, 3, 8}) {
    std::vector<RleInput> in;
    for (int64_t i = 0; i < n; ++i) in.push_back(counts_input(good));
    in[31] = counts_input(short_sum);
    in[17] = string_input("!!");  // outside '0'..'o'
    in[12] = counts_input(short_sum);
    std::vector<uint8_t> out(static_cast<size_t>(n * h * w));
    std::string message;
    try {
      rle_decode_batch(in, h, w, out.data(), threads);
    } catch (const Error& e) {
      CHECK_EQ(e.code(), std::string("E_FORMAT"));
      message = e.what();
    }
    CHECK(message.rfind("rles[12]: the counts sum to 8", 0) == 0);
    // The string entry, once it is the first bad one: the parser's message.
    in[12] = counts_input(good);
    message.clear();
    try {
      rle_decode_batch(in, h, w, out.data(), threads, "masks");
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message.find("RLE string: byte 0 is 33") != std::string::npos);
    in[17] = counts_input(good);
    message.clear();
    try {
      rle_decode_batch(in, h, w, out.data(), threads, "masks");
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message.rfind("masks[31]: ", 0) == 0);
  }
  std::vector<RleInput> one{counts_input(good)};
  CHECK_THROWS_CODE(rle_decode_batch(one, h, w, nullptr), "E_SHAPE");
  CHECK_THROWS_CODE(rle_decode_batch(one, -1, w, nullptr), "E_SHAPE");
}

TEST(rle_resolve_all_checks_and_parses_in_order) {
  const std::vector<uint32_t> c{0, 6};
  std::vector<RleInput> in{counts_input(c), string_input(rle_to_string(c.data(), c.size()))};
  const std::vector<RleRef> r = rle_resolve_all(in, 2, 3, "rles");
  CHECK_EQ(r.size(), size_t(2));
  CHECK(r[0].counts == c.data());
  CHECK((std::vector<uint32_t>(r[1].counts, r[1].counts + r[1].m) == c));
  std::vector<RleInput> bad{counts_input(c), counts_input(c)};
  std::string message;
  try {
    rle_resolve_all(bad, 3, 3, "ground truths");
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.rfind("ground truths[0]: ", 0) == 0);
}
