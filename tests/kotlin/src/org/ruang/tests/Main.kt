package org.ruang.tests

import org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder
import org.junit.platform.launcher.core.LauncherFactory
import org.junit.platform.launcher.listeners.SummaryGeneratingListener
import java.io.PrintWriter
import kotlin.system.exitProcess

/** Runs every JUnit 5 test in this package and prints one `N passed, N failed, N skipped` line. */
fun main() {
    val request = LauncherDiscoveryRequestBuilder.request()
        .selectors(selectPackage("org.ruang.tests"))
        .build()
    val summary = SummaryGeneratingListener()
    LauncherFactory.create().execute(request, summary)
    val s = summary.summary
    s.printFailuresTo(PrintWriter(System.out), 25)
    val passed = s.testsSucceededCount
    val failed = s.testsFailedCount + s.testsAbortedCount
    println("$passed passed, $failed failed, ${s.testsSkippedCount} skipped")
    exitProcess(if (failed > 0 || s.testsFoundCount == 0L) 1 else 0)
}
