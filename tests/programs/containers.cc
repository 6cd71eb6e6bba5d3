// containers.cc - C++ under cebox: the standard containers and every form of
// operator new/delete reach the CE heap through libstdc++.
#include <algorithm>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "box.h"

struct alignas(64) Wide {
    char bytes[100];
};

int main()
{
    std::vector<int> v;
    for (int i = 0; i < 100000; i++) {
        v.push_back(i * 3);
    }
    CHECK(in_box(v.data()), "vector storage lies in the slot");
    std::map<std::string, int> m;
    std::unordered_map<int, std::string> u;
    std::list<std::string> l;
    for (int i = 0; i < 20000; i++) {
        std::string key = "key-" + std::to_string(i) + std::string(i % 50, 'x');
        m[key] = i;
        u[i] = key;
        l.push_back(key);
    }
    CHECK(m.size() == 20000 && u.size() == 20000 && l.size() == 20000, "map, unordered_map, list");
    CHECK(m["key-77" + std::string(27, 'x')] == 77, "map lookups");
    std::sort(v.begin(), v.end(), [](int a, int b) { return a > b; });
    CHECK(v.front() == 299997, "sorting a vector");

    int *one = new int(5);
    int *many = new int[1000]();
    CHECK(in_box(one) && in_box(many) && many[999] == 0, "new and new[]");
    delete one;
    delete[] many;
    Wide *w = new Wide;
    Wide *ws = new Wide[10];
    CHECK((reinterpret_cast<uintptr_t>(w) & 63) == 0 && (reinterpret_cast<uintptr_t>(ws) & 63) == 0,
          "aligned new honours alignas(64)");
    CHECK(in_box(w), "aligned new lies in the slot");
    delete w;   // sized, aligned delete
    delete[] ws;
    void *raw = ::operator new(100, std::align_val_t(128));
    CHECK((reinterpret_cast<uintptr_t>(raw) & 127) == 0, "operator new(size, align_val_t)");
    ::operator delete(raw, 100, std::align_val_t(128));
    int *nt = new (std::nothrow) int[10];
    CHECK(nt != nullptr, "nothrow new");
    delete[] nt;
    auto sp = std::make_shared<std::vector<char>>(50000, 'a');
    CHECK(in_box(sp->data()), "make_shared");

    // Running out: new throws std::bad_alloc, nothrow new returns nullptr.
    bool threw = false;
    try {
        std::vector<std::unique_ptr<char[]>> hog;
        for (;;) {
            hog.emplace_back(new char[1 << 20]);
        }
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "operator new throws std::bad_alloc when the box is full");
    char *none = new (std::nothrow) char[64 << 20];
    CHECK(none == nullptr, "nothrow new returns nullptr for 64 MB");
    return box_done();
}
