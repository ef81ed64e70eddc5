/* The demo's embedded detector bundle and 36 s flight segment: the same files as the Rust
 * firmware example's (firmware-example/data/, found through the assembler's -I). */
    .section .rodata.avm_embedded, "a"
    .balign 4
    .global avm_embedded_bundle, avm_embedded_bundle_end
avm_embedded_bundle:
    .incbin "detector.avmb"
avm_embedded_bundle_end:
    .balign 4
    .global avm_embedded_flight, avm_embedded_flight_end
avm_embedded_flight:
    .incbin "flight_segment.avmq"
avm_embedded_flight_end:
    .section .note.GNU-stack, "", %progbits
