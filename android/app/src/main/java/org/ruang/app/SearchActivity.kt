package org.ruang.app

import android.app.Activity
import android.content.Context
import android.content.Intent
import android.os.Bundle
import android.view.KeyEvent
import android.view.inputmethod.EditorInfo
import android.widget.EditText
import android.widget.LinearLayout
import org.ruang.app.presenter.SearchPresenter
import org.ruang.app.presenter.SearchScreen

/** Search people, live rooms and scheduled rooms (`GET /v1/search`). */
class SearchActivity : Activity() {
    private lateinit var query: EditText
    private lateinit var results: LinearLayout
    /** Bumped per search so a late answer to an older query is dropped. */
    private var generation = 0
    var shown: SearchScreen? = null
        private set

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val column = scaffold("Search")
        val row = horizontal()
        query = field("People, rooms, events", ID_QUERY).apply {
            imeOptions = EditorInfo.IME_ACTION_SEARCH
            setOnEditorActionListener { _, action, event ->
                if (action == EditorInfo.IME_ACTION_SEARCH || event?.keyCode == KeyEvent.KEYCODE_ENTER) {
                    search(); true
                } else {
                    false
                }
            }
        }
        row.addView(query, weighted())
        row.addView(button("Search", ButtonStyle.FILLED) { search() }, wrap().margins(this, l = Space.S))
        column.addView(row, matchWrap())
        results = vertical()
        column.addView(results, matchWrap())
        intent.getStringExtra(EXTRA_QUERY)?.let { query.setText(it); search() }
    }

    fun search() {
        val q = SearchPresenter.query(query.text.toString()) ?: return toast("Type a name, a handle or a word")
        val gen = ++generation
        results.removeAllViews()
        results.addView(statusLine("Searching…"), matchWrap())
        ruang.restoreSession { s ->
            s.onFailure { e -> show(gen) { results.addView(statusLine(errorText(e)), matchWrap()) } }
            s.onSuccess {
                ruang.background({ it.search(q) }) { r ->
                    r.onSuccess { found -> show(gen) { render(SearchPresenter.present(q, found)) } }
                    r.onFailure { e -> show(gen) { results.addView(statusLine(errorText(e)), matchWrap()) } }
                }
            }
        }
    }

    private fun show(gen: Int, f: () -> Unit) {
        if (gen != generation || isFinishing) return
        results.removeAllViews()
        f()
    }

    private fun render(s: SearchScreen) {
        shown = s
        s.emptyText?.let { results.addView(statusLine(it), matchWrap()); return }
        if (s.people.isNotEmpty()) {
            results.addView(sectionTitle("People"), matchWrap())
            s.people.zip(s.peopleHandles).forEach { (face, handle) ->
                results.addView(personRow(face, "@$handle") { startActivity(ProfileActivity.open(this, handle)) }, matchWrap())
            }
        }
        if (s.rooms.isNotEmpty()) {
            results.addView(sectionTitle("Live rooms"), matchWrap())
            for (r in s.rooms) results.addView(roomRow(r), matchWrap().margins(this, b = Space.S))
        }
        if (s.events.isNotEmpty()) {
            results.addView(sectionTitle("Scheduled rooms"), matchWrap())
            for (e in s.events) results.addView(eventRow(e, live = e.live), matchWrap().margins(this, b = Space.S))
        }
    }

    companion object {
        const val ID_QUERY = 0x7f0a0201
        const val EXTRA_QUERY = "org.ruang.app.QUERY"

        fun open(context: Context): Intent = Intent(context, SearchActivity::class.java)
    }
}
