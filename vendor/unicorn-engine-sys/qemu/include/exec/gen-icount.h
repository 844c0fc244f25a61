#ifndef GEN_ICOUNT_H
#define GEN_ICOUNT_H

#include "qemu/timer.h"

/* Helpers for instruction counting code generation.  */

static inline void gen_io_start(TCGContext *tcg_ctx)
{
    TCGv_i32 tmp = tcg_const_i32(tcg_ctx, 1);
    tcg_gen_st_i32(tcg_ctx, tmp, tcg_ctx->cpu_env,
                   offsetof(ArchCPU, parent_obj.can_do_io) -
                   offsetof(ArchCPU, env));
    tcg_temp_free_i32(tcg_ctx, tmp);
}

/*
 * cpu->can_do_io is cleared automatically at the beginning of
 * each translation block.  The cost is minimal and only paid
 * for -icount, plus it would be very easy to forget doing it
 * in the translator.  Therefore, backends only need to call
 * gen_io_start.
 */
static inline void gen_io_end(TCGContext *tcg_ctx)
{
    TCGv_i32 tmp = tcg_const_i32(tcg_ctx, 0);
    tcg_gen_st_i32(tcg_ctx, tmp, tcg_ctx->cpu_env,
                   offsetof(ArchCPU, parent_obj.can_do_io) -
                   offsetof(ArchCPU, env));
    tcg_temp_free_i32(tcg_ctx, tmp);
}

static inline void gen_tb_start(TCGContext *tcg_ctx, TranslationBlock *tb)
{
    /*
     * cmaemu patch: QEMU's inline exit check instead of Unicorn's call to
     * helper_check_exit_request at every block start (a call that also
     * spilled the guest registers): when something asked the CPU to exit
     * (cpu_exit: uc_emu_stop, an invalid access, a timeout), leave before
     * the block runs. cpu_tb_exec() puts PC back at the block start.
     */
    TCGv_i32 count = tcg_temp_new_i32(tcg_ctx);

    tcg_ctx->exitreq_label = gen_new_label(tcg_ctx);
    tcg_gen_ld_i32(tcg_ctx, count, tcg_ctx->cpu_env,
                   offsetof(ArchCPU, neg.icount_decr.u32) -
                   offsetof(ArchCPU, env));
    tcg_gen_brcondi_i32(tcg_ctx, TCG_COND_LT, count, 0,
                        tcg_ctx->exitreq_label);
    tcg_temp_free_i32(tcg_ctx, count);
}

/*
 * cmaemu patch: branch to @stop when the count has reached the deadline,
 * or when the caller watches for CPSR.I to clear (@daif_offset: env->daif,
 * 0 when the target has none) and it is clear.
 */
static inline void gen_cmaemu_check(TCGContext *tcg_ctx, intptr_t daif_offset, TCGLabel *stop)
{
    uc_cmaemu_counter *c = tcg_ctx->uc->cmaemu_counter;
    TCGv_ptr p = tcg_const_ptr(tcg_ctx, c);
    TCGv_i64 v = tcg_temp_new_i64(tcg_ctx);
    TCGv_i64 d = tcg_temp_new_i64(tcg_ctx);
    TCGLabel *after = gen_new_label(tcg_ctx);

    /* (temps are dead after a branch: each part makes its own) */
    tcg_gen_ld_i64(tcg_ctx, v, p, offsetof(uc_cmaemu_counter, insns));
    tcg_gen_ld_i64(tcg_ctx, d, p, offsetof(uc_cmaemu_counter, deadline));
    tcg_temp_free_ptr(tcg_ctx, p);
    tcg_gen_brcond_i64(tcg_ctx, TCG_COND_GEU, v, d, stop);
    tcg_temp_free_i64(tcg_ctx, v);
    tcg_temp_free_i64(tcg_ctx, d);
    if (daif_offset) {
        TCGv_ptr p2 = tcg_const_ptr(tcg_ctx, c);
        TCGv_i32 w = tcg_temp_new_i32(tcg_ctx);
        tcg_gen_ld_i32(tcg_ctx, w, p2, offsetof(uc_cmaemu_counter, watch_unmask));
        tcg_temp_free_ptr(tcg_ctx, p2);
        tcg_gen_brcondi_i32(tcg_ctx, TCG_COND_EQ, w, 0, after);
        tcg_temp_free_i32(tcg_ctx, w);
        w = tcg_temp_new_i32(tcg_ctx);
        /* CPSR.I is bit 7 of env->daif (little-endian host: low word). */
        tcg_gen_ld_i32(tcg_ctx, w, tcg_ctx->cpu_env, daif_offset);
        tcg_gen_andi_i32(tcg_ctx, w, w, 1 << 7);
        tcg_gen_brcondi_i32(tcg_ctx, TCG_COND_EQ, w, 0, stop);
        tcg_temp_free_i32(tcg_ctx, w);
    }
    gen_set_label(tcg_ctx, after);
}

/*
 * cmaemu patch: the instruction counter (uc_cmaemu_set_counter), emitted
 * before gen_tb_start(): on a stop condition go to the end of the block
 * (gen_tb_end: the counter's on_stop callback, then a stop), else add this
 * block's instruction count (patched in by gen_cmaemu_count_patch() once
 * the block is translated).
 */
static inline void gen_cmaemu_count(TCGContext *tcg_ctx, intptr_t daif_offset)
{
    uc_cmaemu_counter *c = tcg_ctx->uc->cmaemu_counter;
    TCGv_ptr p;
    TCGv_i64 v, n;

    tcg_ctx->cmaemu_daif_offset = daif_offset;
    tcg_ctx->cmaemu_stop_label = gen_new_label(tcg_ctx);
    tcg_ctx->cmaemu_cont_label = gen_new_label(tcg_ctx);
    gen_cmaemu_check(tcg_ctx, daif_offset, tcg_ctx->cmaemu_stop_label);
    gen_set_label(tcg_ctx, tcg_ctx->cmaemu_cont_label);

    p = tcg_const_ptr(tcg_ctx, c);
    v = tcg_temp_new_i64(tcg_ctx);
    n = tcg_temp_new_i64(tcg_ctx);
    tcg_gen_ld_i64(tcg_ctx, v, p, offsetof(uc_cmaemu_counter, insns));
    tcg_gen_movi_i64(tcg_ctx, n, 0xdeadbeef);
    tcg_ctx->cmaemu_count_op = tcg_last_op(tcg_ctx);
    tcg_gen_add_i64(tcg_ctx, v, v, n);
    tcg_gen_st_i64(tcg_ctx, v, p, offsetof(uc_cmaemu_counter, insns));
    tcg_gen_ld_i64(tcg_ctx, n, p, offsetof(uc_cmaemu_counter, blocks));
    tcg_gen_addi_i64(tcg_ctx, n, n, 1);
    tcg_gen_st_i64(tcg_ctx, n, p, offsetof(uc_cmaemu_counter, blocks));
    tcg_temp_free_ptr(tcg_ctx, p);
    tcg_temp_free_i64(tcg_ctx, v);
    tcg_temp_free_i64(tcg_ctx, n);
}

/* cmaemu patch: the block's instruction count, once known. */
static inline void gen_cmaemu_count_patch(TCGContext *tcg_ctx, int num_insns)
{
    tcg_set_insn_param(tcg_ctx->cmaemu_count_op, 1, num_insns);
}

static inline void gen_tb_end(TCGContext *tcg_ctx, TranslationBlock *tb, int num_insns)
{
    if (tcg_ctx->delay_slot_flag != NULL){
        tcg_temp_free_i32(tcg_ctx, tcg_ctx->delay_slot_flag);
    }
    tcg_ctx->delay_slot_flag = NULL;
    if (tb_cflags(tb) & CF_USE_ICOUNT) {
        /* Update the num_insn immediate parameter now that we know
         * the actual insn count.  */
        tcg_set_insn_param(tcg_ctx->icount_start_insn, 1, num_insns);
    }

    if (tcg_ctx->cmaemu_stop_label) {
        /*
         * cmaemu patch: stop as uc_emu_stop() does (stop_request, then
         * cpu_exit()), and say why in the counter.
         */
        TCGv_i32 one, minus1, r;
        TCGv_ptr p, u;
        TCGLabel *hard = gen_new_label(tcg_ctx);

        /* (temps are dead across a label: made after it) */
        gen_set_label(tcg_ctx, tcg_ctx->cmaemu_stop_label);
        /* the counter's on_stop callback may let the block run after all
           (the host served what was due without a stop): check again,
           then count and run the block */
        u = tcg_const_ptr(tcg_ctx, tcg_ctx->uc);
        r = tcg_temp_new_i32(tcg_ctx);
        gen_helper_cmaemu_on_stop(tcg_ctx, r, u);
        tcg_temp_free_ptr(tcg_ctx, u);
        tcg_gen_brcondi_i32(tcg_ctx, TCG_COND_EQ, r, 0, hard);
        tcg_temp_free_i32(tcg_ctx, r);
        gen_cmaemu_check(tcg_ctx, tcg_ctx->cmaemu_daif_offset, hard);
        tcg_gen_br(tcg_ctx, tcg_ctx->cmaemu_cont_label);

        gen_set_label(tcg_ctx, hard);
        one = tcg_const_i32(tcg_ctx, 1);
        minus1 = tcg_const_i32(tcg_ctx, -1);
        p = tcg_const_ptr(tcg_ctx, tcg_ctx->uc->cmaemu_counter);
        u = tcg_const_ptr(tcg_ctx, &tcg_ctx->uc->stop_request);
        tcg_gen_st_i32(tcg_ctx, one, p, offsetof(uc_cmaemu_counter, stopped));
        tcg_gen_st8_i32(tcg_ctx, one, u, 0);
        /* CPUState.exit_request is a bool */
        tcg_gen_st8_i32(tcg_ctx, one, tcg_ctx->cpu_env,
                       offsetof(ArchCPU, parent_obj.exit_request) -
                       offsetof(ArchCPU, env));
        QEMU_BUILD_BUG_ON(sizeof(sig_atomic_t) != 4);
        tcg_gen_st_i32(tcg_ctx, one, tcg_ctx->cpu_env,
                       offsetof(ArchCPU, parent_obj.tcg_exit_req) -
                       offsetof(ArchCPU, env));
        tcg_gen_st16_i32(tcg_ctx, minus1, tcg_ctx->cpu_env,
                         offsetof(ArchCPU, neg.icount_decr.u16.high) -
                         offsetof(ArchCPU, env));
        tcg_temp_free_i32(tcg_ctx, one);
        tcg_temp_free_i32(tcg_ctx, minus1);
        tcg_temp_free_ptr(tcg_ctx, p);
        tcg_temp_free_ptr(tcg_ctx, u);
        tcg_gen_exit_tb(tcg_ctx, tb, TB_EXIT_REQUESTED);
        tcg_ctx->cmaemu_stop_label = NULL;
    }

    gen_set_label(tcg_ctx, tcg_ctx->exitreq_label);
    tcg_gen_exit_tb(tcg_ctx, tb, TB_EXIT_REQUESTED);
}

#endif
