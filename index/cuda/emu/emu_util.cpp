/* emu_util.cpp: cuda_util.cu compiled for the CPU emulation (see cuda_emu.h). */
#include "../cuda_util.cu"
