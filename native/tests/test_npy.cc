// parse_npy_header against hand-built headers: every version, every dtype,
// 0-D to N-D shapes, and each way a header can be wrong.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "npy.h"
#include "test.h"

using namespace genaug;

namespace {

const char kFile[] = "t.npy";

// A header the way numpy writes it: magic, version, HEADER_LEN, the dict,
// spaces and '\n' so that the data starts at a multiple of 64.
std::string npy(const std::string& dict, int major = 1) {
  const size_t prefix = major == 1 ? 10 : 12;
  size_t hlen = dict.size() + 1;
  hlen += (64 - (prefix + hlen) % 64) % 64;
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  for (size_t i = 0; i < prefix - 8; ++i) out += static_cast<char>((hlen >> (8 * i)) & 0xff);
  out += dict;
  out.append(hlen - dict.size() - 1, ' ');
  out += '\n';
  return out;
}

// A header with an arbitrary HEADER_LEN field followed by `body` as is.
std::string raw(int major, int minor, uint64_t hlen, const std::string& body) {
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += static_cast<char>(minor);
  const int width = major == 1 ? 2 : 4;
  for (int i = 0; i < width; ++i) out += static_cast<char>((hlen >> (8 * i)) & 0xff);
  return out + body;
}

std::string dict(const std::string& descr, const std::string& shape, const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

NpyHeader parse(const std::string& s, int64_t* needed = nullptr) {
  return parse_npy_header(reinterpret_cast<const uint8_t*>(s.data()), s.size(), kFile, needed);
}

// The message of the genaug::Error that parsing `s` throws ("" if none).
std::string message_of(const std::string& s) {
  try {
    parse(s);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

}  // namespace

TEST(npy_v1_numpy_header) {
  const std::string s = npy(dict("<f4", "(2, 3)") + std::string(20, ' '));
  CHECK_EQ(s.size(), size_t{128});
  const NpyHeader h = parse(s + std::string(24, '\0'));
  CHECK_EQ(h.major, 1);
  CHECK_EQ(h.minor, 0);
  CHECK_EQ(h.descr, std::string("<f4"));
  CHECK_EQ(h.dtype, std::string("float32"));
  CHECK_EQ(h.itemsize, 4);
  CHECK(!h.fortran_order);
  CHECK(h.shape == (std::vector<int64_t>{2, 3}));
  CHECK_EQ(h.data_offset, int64_t{128});
  CHECK_EQ(h.count, int64_t{6});
  CHECK_EQ(h.data_bytes, int64_t{24});
  CHECK_EQ(npy_header_length(reinterpret_cast<const uint8_t*>(s.data()), s.size()), int64_t{128});
}

TEST(npy_v2_and_v3) {
  for (int major : {2, 3}) {
    const std::string s = npy(dict("<f8", "(4,)"), major);
    CHECK_EQ(s.size() % 64, size_t{0});
    const NpyHeader h = parse(s);
    CHECK_EQ(h.major, major);
    CHECK_EQ(h.dtype, std::string("float64"));
    CHECK(h.shape == (std::vector<int64_t>{4}));
    CHECK_EQ(h.data_offset, static_cast<int64_t>(s.size()));
    CHECK_EQ(h.data_bytes, int64_t{32});
    CHECK_EQ(npy_header_length(reinterpret_cast<const uint8_t*>(s.data()), s.size()), static_cast<int64_t>(s.size()));
  }
  // A v2 header longer than 65535 bytes (padding), as numpy writes for huge structured dtypes.
  const std::string big = dict("<i4", "(3,)") + std::string(70000, ' ');
  const NpyHeader h = parse(npy(big, 2));
  CHECK_EQ(h.major, 2);
  CHECK_EQ(h.count, int64_t{3});
  CHECK(h.data_offset > 65535);
}

TEST(npy_unaligned_header_is_accepted) {
  // Old numpy versions aligned to 16 bytes, hand-written files to nothing at all.
  const std::string body = dict("<f4", "(1,)") + "\n";
  const NpyHeader h = parse(raw(1, 0, body.size(), body));
  CHECK_EQ(h.data_offset, static_cast<int64_t>(10 + body.size()));
}

TEST(npy_every_dtype) {
  struct Case {
    const char* descr;
    const char* name;
    int size;
  };
  const Case cases[] = {
      {"<f4", "float32", 4}, {"<f2", "float16", 2}, {"<f8", "float64", 8}, {"<i4", "int32", 4}, {"<i8", "int64", 8},
      {"|u1", "uint8", 1},   {"<u1", "uint8", 1},   {"|i1", "int8", 1},    {"|b1", "bool", 1},   {"<u2", "uint16", 2},
      {"<i2", "int16", 2},   {"<u4", "uint32", 4},  {"<u8", "uint64", 8},
  };
  for (const Case& c : cases) {
    const NpyHeader h = parse(npy(dict(c.descr, "(3, 5)")));
    CHECK_EQ(h.descr, std::string(c.descr));
    CHECK_EQ(h.dtype, std::string(c.name));
    CHECK_EQ(h.itemsize, c.size);
    CHECK_EQ(h.data_bytes, int64_t{15} * c.size);
  }
}

TEST(npy_shapes) {
  NpyHeader h = parse(npy(dict("<f4", "()")));
  CHECK(h.shape.empty());
  CHECK_EQ(h.count, int64_t{1});
  CHECK_EQ(h.data_bytes, int64_t{4});

  h = parse(npy(dict("<f4", "(5,)")));
  CHECK(h.shape == (std::vector<int64_t>{5}));
  CHECK_EQ(h.count, int64_t{5});

  h = parse(npy(dict("<i8", "(2, 3, 4)")));
  CHECK(h.shape == (std::vector<int64_t>{2, 3, 4}));
  CHECK_EQ(h.count, int64_t{24});
  CHECK_EQ(h.data_bytes, int64_t{192});

  h = parse(npy(dict("<f4", "(0, 7)")));
  CHECK_EQ(h.count, int64_t{0});
  CHECK_EQ(h.data_bytes, int64_t{0});

  h = parse(npy(dict("<f4", "(3L, 4L)")));  // Python 2 longs
  CHECK(h.shape == (std::vector<int64_t>{3, 4}));

  h = parse(npy(dict("<f4", "(2,3)")));  // no space
  CHECK(h.shape == (std::vector<int64_t>{2, 3}));

  std::string many = "(";
  for (int i = 0; i < 32; ++i) many += "1, ";
  many += ")";
  h = parse(npy(dict("|u1", many)));
  CHECK_EQ(h.shape.size(), size_t{32});
  CHECK_EQ(h.count, int64_t{1});
}

TEST(npy_other_spellings) {
  // Keys in another order, no trailing comma, double quotes: all valid Python literals.
  NpyHeader h = parse(npy("{'shape': (2,), 'fortran_order': False, 'descr': '<i4'}"));
  CHECK_EQ(h.dtype, std::string("int32"));
  CHECK(h.shape == (std::vector<int64_t>{2}));
  h = parse(npy("{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (1, 1)}"));
  CHECK_EQ(h.dtype, std::string("float16"));
}

TEST(npy_truncated_header) {
  const std::string s = npy(dict("<f4", "(2, 3)"));
  int64_t needed = -1;
  CHECK_THROWS_CODE(parse(s.substr(0, 40), &needed), "E_FORMAT");
  CHECK_EQ(needed, static_cast<int64_t>(s.size()));
  CHECK(contains(message_of(s.substr(0, 40)), kFile));

  // v2 needs 12 bytes before it knows its length.
  const std::string v2 = npy(dict("<f4", "(2, 3)"), 2);
  needed = -1;
  CHECK_THROWS_CODE(parse(v2.substr(0, 11), &needed), "E_FORMAT");
  CHECK_EQ(needed, int64_t{12});

  // Fewer than 10 bytes: not recognisably an .npy file, nothing to ask for.
  needed = -1;
  CHECK_THROWS_CODE(parse(s.substr(0, 8), &needed), "E_FORMAT");
  CHECK_EQ(needed, int64_t{0});
  CHECK_THROWS_CODE(parse(std::string()), "E_FORMAT");
}

TEST(npy_header_length_too_large) {
  int64_t needed = -1;
  const std::string s = raw(2, 0, static_cast<uint64_t>(kNpyMaxHeaderBytes) + 1, "{");
  CHECK_THROWS_CODE(parse(s, &needed), "E_FORMAT");
  CHECK_EQ(needed, int64_t{0});  // never ask the caller to read a huge header
  CHECK(contains(message_of(s), "limit"));
  CHECK_THROWS_CODE(parse(raw(3, 0, 0xffffffffu, "{")), "E_FORMAT");
  // A v1 length larger than the bytes given is a truncation, with `needed` set.
  needed = -1;
  CHECK_THROWS_CODE(parse(raw(1, 0, 0xffff, dict("<f4", "(1,)")), &needed), "E_FORMAT");
  CHECK_EQ(needed, int64_t{10 + 0xffff});
}

TEST(npy_bad_magic_and_version) {
  std::string s = npy(dict("<f4", "(1,)"));
  std::string bad = s;
  bad[0] = 'x';
  CHECK_THROWS_CODE(parse(bad), "E_FORMAT");
  CHECK(contains(message_of(bad), "not an .npy file"));
  CHECK(contains(message_of(bad), kFile));
  bad = s;
  bad[3] = 'm';
  CHECK_THROWS_CODE(parse(bad), "E_FORMAT");
  CHECK_THROWS_CODE(parse("PK\x03\x04 this is a zip file"), "E_FORMAT");

  for (int major : {0, 4, 255}) {
    bad = s;
    bad[6] = static_cast<char>(major);
    CHECK_THROWS_CODE(parse(bad), "E_FORMAT");
    CHECK(contains(message_of(bad), "version"));
  }
  bad = s;
  bad[7] = 1;  // 1.1
  CHECK_THROWS_CODE(parse(bad), "E_FORMAT");
}

TEST(npy_fortran_order) {
  // Parsed (the reader reorders the data); only the Python literals True/False are booleans.
  const NpyHeader h = parse(npy(dict("<f4", "(2, 3)", "True")));
  CHECK(h.fortran_order);
  CHECK(h.shape == (std::vector<int64_t>{2, 3}));
  CHECK_EQ(h.count, int64_t{6});
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "(2, 3)", "true"))), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "(2, 3)", "0"))), "E_FORMAT");
}

TEST(npy_big_endian_and_unsupported_dtypes) {
  for (const char* d : {">f4", ">f8", ">i4", ">u2"}) {
    const std::string s = npy(dict(d, "(2,)"));
    CHECK_THROWS_CODE(parse(s), "E_DTYPE");
    CHECK(contains(message_of(s), "big-endian"));
    CHECK(contains(message_of(s), kFile));
  }
  for (const char* d : {"<c8", "|O", "<U5", "|S3", "<M8[ns]", "f4", "", "<f16"}) {
    CHECK_THROWS_CODE(parse(npy(dict(d, "(2,)"))), "E_DTYPE");
  }
  // Structured dtypes are a list, not a string.
  CHECK_THROWS_CODE(parse(npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }")), "E_FORMAT");
}

TEST(npy_missing_keys) {
  CHECK_THROWS_CODE(parse(npy("{'fortran_order': False, 'shape': (2,), }")), "E_FORMAT");
  CHECK(contains(message_of(npy("{'fortran_order': False, 'shape': (2,), }")), "descr"));
  CHECK_THROWS_CODE(parse(npy("{'descr': '<f4', 'shape': (2,), }")), "E_FORMAT");
  CHECK(contains(message_of(npy("{'descr': '<f4', 'shape': (2,), }")), "fortran_order"));
  CHECK_THROWS_CODE(parse(npy("{'descr': '<f4', 'fortran_order': False, }")), "E_FORMAT");
  CHECK(contains(message_of(npy("{'descr': '<f4', 'fortran_order': False, }")), "shape"));
  CHECK_THROWS_CODE(parse(npy("{}")), "E_FORMAT");
}

TEST(npy_duplicate_and_unknown_keys) {
  const std::string dup = npy("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2,), }");
  CHECK_THROWS_CODE(parse(dup), "E_FORMAT");
  CHECK(contains(message_of(dup), "duplicate"));
  CHECK_THROWS_CODE(parse(npy("{'descr': '<f4', 'fortran_order': False, 'fortran_order': False, 'shape': (2,), }")), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (3,), }")), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }")), "E_FORMAT");
}

TEST(npy_malformed_dict) {
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "(2, 3)") + " x")), "E_FORMAT");  // trailing garbage
  CHECK(contains(message_of(npy(dict("<f4", "(2, 3)") + " x")), "trailing"));
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "(2, 3)") + "}")), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy("'descr': '<f4'")), "E_FORMAT");  // no braces
  CHECK_THROWS_CODE(parse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ")), "E_FORMAT");  // unterminated
  CHECK_THROWS_CODE(parse(npy("{'descr' '<f4', 'fortran_order': False, 'shape': (2,), }")), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy("{'descr': '<f4 , 'fortran_order': False, 'shape': (2,), }")), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy("{'descr': '<\\x66', 'fortran_order': False, 'shape': (2,), }")), "E_FORMAT");  // escapes
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "[2, 3]"))), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "(-1, 3)"))), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "(2.5,)"))), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "(2, 3"))), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "(,)"))), "E_FORMAT");
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "(99999999999999999999,)"))), "E_FORMAT");          // > int64
  CHECK_THROWS_CODE(parse(npy(dict("<f4", "(4294967296, 4294967296)"))), "E_FORMAT");        // product overflows
  std::string many = "(";
  for (int i = 0; i < 33; ++i) many += "1, ";
  many += ")";
  CHECK_THROWS_CODE(parse(npy(dict("<f4", many))), "E_FORMAT");
}

TEST(npy_non_ascii_and_nul) {
  const std::string latin = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } \xe9");
  CHECK_THROWS_CODE(parse(latin), "E_FORMAT");
  CHECK(contains(message_of(latin), "non-ASCII"));
  CHECK_THROWS_CODE(parse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\xc3\xa9", 2)), "E_FORMAT");
  std::string nul = npy(dict("<f4", "(2,)"));
  nul[nul.size() - 2] = '\0';
  CHECK_THROWS_CODE(parse(nul), "E_FORMAT");
  // Version 3.0 headers are UTF-8: the bytes are allowed, a non-ASCII descr is simply unknown.
  CHECK_THROWS_CODE(parse(npy(dict("<f\xc3\xa9", "(2,)"), 3)), "E_DTYPE");
}

TEST(npy_header_length_helper) {
  const std::string v1 = npy(dict("<f4", "(2, 3)"));
  CHECK_EQ(npy_header_length(reinterpret_cast<const uint8_t*>(v1.data()), 10), static_cast<int64_t>(v1.size()));
  const std::string v2 = npy(dict("<f4", "(2, 3)"), 2);
  CHECK_EQ(npy_header_length(reinterpret_cast<const uint8_t*>(v2.data()), 12), static_cast<int64_t>(v2.size()));
  CHECK_EQ(npy_header_length(reinterpret_cast<const uint8_t*>(v2.data()), 11), int64_t{-1});
  CHECK_EQ(npy_header_length(reinterpret_cast<const uint8_t*>("0123456789ab"), 12), int64_t{-1});
}
