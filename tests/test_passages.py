"""Aligned passage runs (the cross-lingual gate) and the language guess, as pure functions."""

from __future__ import annotations

import numpy as np
import pytest

from provenance.passages import AlignedRun, RunGate, aligned_runs, guess_language


def spans(n: int, width: int = 100) -> list[tuple[int, int]]:
    """``n`` passages overlapping by half, like passage_spans makes them."""
    return [(k * width // 2, k * width // 2 + width) for k in range(n)]


def test_diagonal_run_is_found_with_spans_on_both_sides():
    sim = np.full((6, 10), 0.1, dtype=np.float32)
    for i, j in ((1, 4), (2, 5), (3, 6)):
        sim[i, j] = 0.8
    runs = aligned_runs(sim, spans(6), spans(10), cell_threshold=0.5)
    assert len(runs) == 1
    r = runs[0]
    assert [(i, j) for i, j, _ in r.pairs] == [(1, 4), (2, 5), (3, 6)]
    assert r.draft_span == (50, 250) and r.source_span == (200, 400)
    assert r.length == 3 and r.score == pytest.approx(0.8) and r.min_score == pytest.approx(0.8)


def test_length_drift_is_absorbed_by_a_skip_not_a_zigzag():
    # A longer translation falls behind: draft 0,1,3 match source 0,1,2 (draft passage 2 straddles).
    # Overlapping neighbours are close too (0.6); the run must not zig-zag through them.
    sim = np.full((4, 3), 0.6, dtype=np.float32)
    sim[0, 0], sim[1, 1], sim[3, 2] = 0.9, 0.9, 0.9
    (r,) = aligned_runs(sim, spans(4), spans(3), cell_threshold=0.7)
    assert [(i, j) for i, j, _ in r.pairs] == [(0, 0), (1, 1), (3, 2)]
    assert (r.draft_passages, r.source_passages, r.length) == (3, 3, 3)
    assert r.score == pytest.approx(0.9)
    for z in aligned_runs(sim, spans(4), spans(3), cell_threshold=0.5):
        assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(z.pairs, z.pairs[1:], strict=False))


def test_order_matters_reversed_pairs_do_not_chain():
    sim = np.zeros((3, 8), dtype=np.float32)
    sim[0, 6], sim[1, 3], sim[2, 0] = 0.9, 0.9, 0.9  # same topic, no shared order
    runs = aligned_runs(sim, spans(3), spans(8), cell_threshold=0.5)
    assert sorted(r.length for r in runs) == [1, 1, 1]


def test_gaps_beyond_max_gap_split_runs():
    sim = np.zeros((6, 6), dtype=np.float32)
    sim[0, 0], sim[1, 1], sim[4, 4], sim[5, 5] = 0.9, 0.9, 0.9, 0.9
    runs = aligned_runs(sim, spans(6), spans(6), cell_threshold=0.5, max_gap=1)
    assert [(r.pairs[0][0], r.length) for r in runs] == [(0, 2), (4, 2)] or \
        [(r.pairs[0][0], r.length) for r in runs] == [(4, 2), (0, 2)]
    (joined,) = aligned_runs(sim, spans(6), spans(6), cell_threshold=0.5, max_gap=2)
    assert joined.length == 4


def test_runs_are_disjoint_in_draft_passages_and_best_first():
    sim = np.zeros((4, 8), dtype=np.float32)
    sim[0, 0], sim[1, 1], sim[2, 2], sim[3, 3] = 0.9, 0.9, 0.9, 0.9
    sim[1, 6], sim[2, 7] = 0.95, 0.95  # a shorter, stronger competing run on draft rows 1-2
    runs = aligned_runs(sim, spans(4), spans(8), cell_threshold=0.5)
    rows = [i for r in runs for i, _, _ in r.pairs]
    assert len(rows) == len(set(rows))
    assert runs[0].length >= runs[-1].length


def test_nothing_above_threshold_and_argument_checks():
    assert aligned_runs(np.zeros((2, 2)), spans(2), spans(2), cell_threshold=0.5) == []
    assert aligned_runs(np.zeros((0, 3)), [], spans(3), cell_threshold=0.5) == []
    with pytest.raises(ValueError, match=r"sim has shape \(2, 2\), expected \(2, 3\) from the spans"):
        aligned_runs(np.zeros((2, 2)), spans(2), spans(3), cell_threshold=0.5)
    with pytest.raises(ValueError, match="max_gap must be >= 0, not -1"):
        aligned_runs(np.zeros((2, 2)), spans(2), spans(2), cell_threshold=0.5, max_gap=-1)


def run(length: int, score: float, min_score: float | None = None) -> AlignedRun:
    return AlignedRun(pairs=tuple((k, k, score) for k in range(length)), draft_span=(0, 1),
                      source_span=(0, 1), score=score, min_score=score if min_score is None else min_score,
                      draft_passages=length, source_passages=length)


@pytest.mark.parametrize(("r", "draft_total", "source_total", "expected"), [
    (run(2, 0.6), 10, 10, True),          # a run of two at the run bar
    (run(2, 0.59), 10, 10, False),        # below the run bar
    (run(3, 0.7, 0.49), 10, 10, False),   # one pair below the cell bar
    (run(1, 0.95), 10, 10, False),        # a lone pair in a long draft: same topic, not a copy
    (run(1, 0.8), 1, 10, True),           # a one-passage draft can only give one pair
    (run(1, 0.79), 1, 10, False),
    (run(1, 0.85), 10, 1, True),          # likewise a one-passage source
])
def test_run_gate(r, draft_total, source_total, expected):
    gate = RunGate(cell_threshold=0.5, run_threshold=0.6, single_threshold=0.8)
    assert gate.passes(r, draft_total, source_total) is expected


def test_the_shortest_run_can_need_a_higher_mean():
    gate = RunGate(cell_threshold=0.5, run_threshold=0.6, single_threshold=0.8, shortest_run_threshold=0.7)
    assert not gate.passes(run(2, 0.69), 10, 10)   # two passages: under their own bar
    assert gate.passes(run(2, 0.7), 10, 10)
    assert gate.passes(run(3, 0.6), 10, 10)        # longer runs keep the run bar
    assert [gate.bar(n) for n in (1, 2, 3)] == [0.8, 0.7, 0.6]
    with pytest.raises(ValueError, match="need run_threshold <= shortest_run_threshold <= 1"):
        RunGate(cell_threshold=0.5, run_threshold=0.6, single_threshold=0.8, shortest_run_threshold=0.55)


def test_run_gate_checks_its_thresholds():
    with pytest.raises(ValueError, match="need -1 <= cell_threshold <= run_threshold <= 1"):
        RunGate(cell_threshold=0.7, run_threshold=0.6, single_threshold=0.8)
    with pytest.raises(ValueError, match="min_passages must be >= 1, not 0"):
        RunGate(cell_threshold=0.5, run_threshold=0.6, single_threshold=0.8, min_passages=0)


@pytest.mark.parametrize(("text", "lang"), [
    ("The process receives a signal when the timer expires, and the default action is to terminate it.", "en"),
    ("Der Prozess erhält ein Signal, wenn der Zeitgeber abläuft, und die Standardaktion ist der Abbruch.", "de"),
    ("Le processus reçoit un signal lorsque le minuteur expire, et l'action par défaut est de le terminer.", "fr"),
    ("El proceso recibe una señal cuando el temporizador expira, y la acción por defecto es terminarlo.", "es"),
    ("Il processo riceve un segnale quando il timer scade, e l'azione predefinita è di terminarlo.", "it"),
    ("O processo recebe um sinal quando o temporizador expira, e a ação padrão é terminá-lo.", "pt"),
    ("Het proces ontvangt een signaal wanneer de timer afloopt, en de standaardactie is het te beëindigen.", "nl"),
    ("Процесс получает сигнал, когда истекает таймер.", "ru"),
    # Languages whose function words or letters were added after the Debian translations were measured.
    ("Bu komut, belirtilen dosyanın içeriğini standart çıktıya yazar ve hiçbir dosya verilmezse standart "
     "girdiden okur; seçenekler dosya adlarından önce verilmelidir.", "tr"),
    ("Tento příkaz vypíše obsah zadaného souboru na standardní výstup. Pokud není zadán žádný soubor, čte ze "
     "standardního vstupu, a když nastane chyba, vrátí nenulový kód.", "cs"),
    ("Această comandă afișează conținutul fișierului la ieșirea standard. Dacă nu este dat niciun fișier, "
     "citește de la intrarea standard, iar după o eroare întoarce un cod diferit de zero.", "ro"),
    ("Ez a parancs kiírja a megadott fájl tartalmát a szabványos kimenetre. Ha nincs megadva fájl, akkor a "
     "szabványos bemenetről olvas, és hiba esetén nem nulla értékkel tér vissza.", "hu"),
    ("Tämä komento tulostaa annetun tiedoston sisällön vakiotulosteeseen. Jos tiedostoa ei anneta, komento "
     "lukee vakiosyötteestä, ja jos virhe tapahtuu, se palauttaa nollasta poikkeavan arvon.", "fi"),
    ("Perintah ini menampilkan isi berkas yang diberikan ke keluaran standar. Jika tidak ada berkas, perintah "
     "akan membaca dari masukan standar dan mengembalikan nilai bukan nol jika terjadi kesalahan.", "id"),
    ("Ця команда виводить вміст зазначеного файлу на стандартний вивід. Якщо файл не вказано, вона читає зі "
     "стандартного вводу і повертає ненульове значення, якщо сталася помилка.", "uk"),
    ("Ова команда исписује садржај датотеке на стандардни излаз. Ако није наведена ниједна датотека, чита са "
     "стандардног улаза и враћа вредност различиту од нуле ако дође до грешке.", "sr"),
    # Vietnamese by its own letters (it was guessed Spanish: "tệp", "có" ...).
    ("Lệnh này hiển thị nội dung của tệp đã cho ra đầu ra tiêu chuẩn. Nếu không có tệp nào, nó đọc từ đầu "
     "vào tiêu chuẩn và trả về giá trị khác không khi có lỗi.", "vi"),
    # Arabic script: Persian and Urdu by the letters Arabic does not write (Persian was guessed Arabic).
    ("تعرض هذه الأداة محتوى الملف المحدد على المخرج القياسي، وإذا لم يعط أي ملف فإنها تقرأ من المدخل القياسي.", "ar"),
    ("این فرمان محتوای پرونده داده شده را در خروجی استاندارد چاپ می‌کند و اگر پرونده‌ای داده نشود از ورودی "
     "استاندارد می‌خواند.", "fa"),
    ("یہ کمانڈ دی گئی فائل کا مواد معیاری آؤٹ پٹ پر دکھاتی ہے اور اگر کوئی فائل نہ دی جائے تو معیاری ان پٹ سے "
     "پڑھتی ہے۔", "ur"),
    ("タイマーが切れるとプロセスはシグナルを受け取ります。", "ja"),
    ("计时器到期时进程收到信号。", "zh"),
    ("", "und"),
    ("1234 5678", "und"),
    ("getpid fork execve", "und"),
])
def test_guess_language(text, lang):
    assert guess_language(text) == lang


def test_latin_letters_other_languages_share_do_not_make_vietnamese():
    # Croatian writes đ and Romanian ă: neither is one of Vietnamese's horned or double-marked vowels.
    assert guess_language("Ova naredba ispisuje sadržaj zadane datoteke; ako đak ne zada datoteku, čita "
                          "sa standardnog ulaza đ đ đ.") != "vi"
    assert guess_language("Această comandă afișează conținutul fișierului la ieșirea standard.") != "vi"


def test_chinese_sentences_end_at_their_stops_and_passages_weigh_characters():
    from provenance.signals.text import NO_SPACE_WORDS_PER_CHAR, passage_spans
    from provenance.textnorm import sentence_spans

    text = "管道是一个单向通道。写入者放进管道的内容会出来！内核保留缓冲区。\n\nEnd of it. Next one."
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "管道是一个单向通道。", "写入者放进管道的内容会出来！", "内核保留缓冲区。", "End of it.", "Next one."]
    # 400 characters with no space, in sentences of 20: about 200 words, so several passages, each about
    # 96 characters (48 words at two characters a word), not one 400-character "word run".
    zh = "一二三四五六七八九十甲乙丙丁戊己庚辛壬癸。" * 20
    spans = passage_spans(zh)
    assert len(spans) >= 4
    assert all(abs((b - a) * NO_SPACE_WORDS_PER_CHAR - 48) <= 12 for a, b in spans[:-1])
    # A sentence of 300 characters without a stop is cut into windows too.
    assert len(passage_spans("字" * 300)) >= 3
