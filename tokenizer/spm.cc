// spm.cc: a thin C wrapper over sentencepiece::SentencePieceProcessor.
// No exception or C++ type crosses this file's boundary.
#include "spm.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

struct spm {
    sentencepiece::SentencePieceProcessor proc;
    std::vector<std::string> pieces; // id -> piece, for stable C strings
    std::string unk_surface;         // what Decode gives the unknown piece (" \u2047 ")
};

extern "C" spm *spm_load(const char *path, char *err, size_t cap)
{
    spm *s = new (std::nothrow) spm;
    if (!s) {
        snprintf(err, cap, "out of memory");
        return nullptr;
    }
    auto st = s->proc.Load(path);
    if (!st.ok()) {
        snprintf(err, cap, "%s", st.ToString().c_str());
        delete s;
        return nullptr;
    }
    int n = s->proc.GetPieceSize();
    s->pieces.reserve(n);
    for (int i = 0; i < n; i++) s->pieces.push_back(s->proc.IdToPiece(i));
    int unk = s->proc.unk_id();
    if (unk >= 0 && !s->proc.Decode(std::vector<int>{unk}, &s->unk_surface).ok()) s->unk_surface.clear();
    return s;
}

extern "C" void spm_free(spm *s) { delete s; }

extern "C" int spm_encode(const spm *s, const char *text, size_t len, int32_t *ids, int cap)
{
    std::vector<int> out;
    s->proc.Encode(absl::string_view(text, len), &out);
    int n = (int)out.size();
    if (n > cap) return -n;
    for (int i = 0; i < n; i++) ids[i] = out[i];
    return n;
}

extern "C" long spm_decode(const spm *s, const int32_t *ids, int n, char *out, size_t cap)
{
    std::vector<int> v(ids, ids + n);
    std::string text;
    s->proc.Decode(v, &text);
    if (text.size() > cap) return -(long)text.size();
    if (!text.empty()) memcpy(out, text.data(), text.size()); // out may be NULL when cap is 0
    return (long)text.size();
}

extern "C" int spm_vocab_size(const spm *s) { return (int)s->pieces.size(); }

extern "C" const char *spm_id_to_piece(const spm *s, int id)
{
    if (id < 0 || id >= (int)s->pieces.size()) return nullptr;
    return s->pieces[id].c_str();
}

extern "C" int spm_piece_to_id(const spm *s, const char *piece) { return s->proc.PieceToId(piece); }
extern "C" int spm_bos_id(const spm *s) { return s->proc.bos_id(); }
extern "C" int spm_eos_id(const spm *s) { return s->proc.eos_id(); }
extern "C" int spm_unk_id(const spm *s) { return s->proc.unk_id(); }
extern "C" int spm_is_control(const spm *s, int id) { return s->proc.IsControl(id); }
extern "C" int spm_is_byte(const spm *s, int id) { return s->proc.IsByte(id); }

// As Decode treats one piece after others (DecodeSentencePiece, past the
// first): control pieces give nothing, byte pieces their byte, the unknown
// piece its surface, any other piece itself with U+2581 as a space. (A
// model's denormalizer, which Decode runs over the whole text, is left out.)
extern "C" long spm_token_bytes(const spm *s, int id, char *out, size_t cap)
{
    if (id < 0 || id >= (int)s->pieces.size() || s->proc.IsControl(id)) return -1;
    const std::string &p = s->pieces[id];
    std::string bytes;
    if (s->proc.IsByte(id) && p.size() == 6) {
        bytes.assign(1, (char)strtol(p.substr(3, 2).c_str(), nullptr, 16));
    } else if (s->proc.IsUnknown(id)) {
        bytes = s->unk_surface;
    } else {
        static const char space[] = "\xe2\x96\x81";
        for (size_t i = 0; i < p.size();) {
            if (!p.compare(i, 3, space)) {
                bytes += ' ';
                i += 3;
            } else {
                bytes += p[i++];
            }
        }
    }
    if (cap) memcpy(out, bytes.data(), bytes.size() < cap ? bytes.size() : cap);
    return (long)bytes.size();
}
