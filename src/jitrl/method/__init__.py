"""The method: types, settings, returns, similarity, values, the closed-form policy update and
the learner (:class:`jitrl.method.learner.JitRL`) that everything else is built on."""
