/*
 * encode.h: turning f32 rows and queries into a field's storage encoding (host side), for every
 * backend. The arithmetic itself is in quant.h, shared with the GPU; this file applies it to whole
 * vectors: normalisation for cosine, per-row i8 parameters, the b1 rotation.
 */
#ifndef VS_ENCODE_H
#define VS_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "quant.h"

/* The seed of every b1 rotation. Stored data depends on it: changing it is a format change. */
#define VS_B1_SEED 0x7665637363616e31ull /* "vecscan1" */

/* Fills the layout of a field from its spec. */
void vs_field_layout_init(vs_field_layout *l, const vs_field_spec *spec);

/* Whether all n values are finite. */
bool vs_all_finite(const float *x, size_t n);
/* |x|^2 in double precision. */
double vs_norm2(const float *x, uint32_t dim);
/* Copies x into out scaled to unit length; false when x is zero. out may equal x. */
bool vs_normalize(const float *x, uint32_t dim, float *out);

/* Encodes one row x, as given, into codes (layout->code_bytes) and consts; cosine rows are
 * normalised here. work must hold vs_encode_work_floats(dim) floats. */
void vs_encode_row(const vs_field_layout *l, const float *x, void *codes, vs_row_consts *consts,
                   float *work);

/* Scratch floats vs_encode_row needs for a row of dim values. */
static inline uint32_t vs_encode_work_floats(uint32_t dim) { return vs_b1_rot_len(dim) + dim; }

/* Decodes a row back to floats (as stored: normalised for cosine; b1 cannot be decoded and
 * gives zeros). */
void vs_decode_row(const vs_field_layout *l, const void *codes, const vs_row_consts *consts,
                   float *out);

/* The b1 bits of x (b1_words words) through the seeded rotation; work: vs_b1_rot_len(dim) floats. */
void vs_b1_encode(uint32_t dim, const float *x, uint64_t *bits, float *work);

/* Encodes one query vector q (normalised for cosine) for an i8 field: codes (dim), scale, sum of
 * q, sum of codes. */
void vs_i8_encode_query(const float *q, uint32_t dim, int8_t *codes, float *scale, float *sum,
                        int32_t *csum);

#endif
